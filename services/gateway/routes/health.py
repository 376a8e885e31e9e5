"""``/healthz`` and ``/metrics``: no token needed, nothing secret in them."""

from __future__ import annotations

import asyncio

from bay.v1 import fold_pb2
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from libs.metrics import PROCESS
from services.gateway.backends import Backends
from services.gateway.deps import BackendsDep, SettingsDep
from services.gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from services.gateway.models import FoldHealth, Health
from services.gateway.settings import GatewaySettings

router = APIRouter(tags=["operations"])

#: a /healthz or a scrape must answer quickly, whoever is slow behind it
ASK_SECONDS = 1.0


async def folds(backends: Backends, settings: GatewaySettings) -> dict[str, fold_pb2.FoldStatusReply]:
    """Each folding service's answer, asked all at once; those that do not answer are left out."""
    registry, schedulers, dns = await asyncio.gather(
        backends.registry.fold_status(min(ASK_SECONDS, settings.registry_timeout_seconds)),
        backends.schedulers.fold_status(min(ASK_SECONDS, settings.scheduler_timeout_seconds)),
        backends.dns.fold_status(min(ASK_SECONDS, settings.dns_timeout_seconds)),
    )
    answers = {"registry": registry, "dns": dns, **{f"scheduler.{c}": r for c, r in schedulers.items()}}
    return {name: reply for name, reply in answers.items() if reply is not None}


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "the gateway's NATS connection has stayed down"}},
)
async def healthz(backends: BackendsDep, settings: SettingsDep) -> Response:
    """Whether the gateway's dependencies answer, and what each folding service skipped.

    The status code stays 200 while the registry is down (``status: degraded``): restarting the
    gateway would not bring it back. It is 503 (``unhealthy``) when the gateway's own NATS connection
    has stayed down past a short grace (event streams and the audit table stop with it). Schedulers,
    the DNS service, the deployer and the autoscaler are reported but do not make the gateway
    degraded: one cluster down leaves the others usable, names resolve on the DNS port whatever the
    gateway says, groups change without the deployer (it deploys their new versions once it is
    back), and without the autoscaler a group keeps its count."""
    registry_ok, schedulers, dns_ok, deployer_ok, autoscaler_ok, answers = await asyncio.gather(
        backends.registry.serving(min(ASK_SECONDS, settings.registry_timeout_seconds)),
        backends.schedulers.serving(min(ASK_SECONDS, settings.scheduler_timeout_seconds)),
        backends.dns.serving(min(ASK_SECONDS, settings.dns_timeout_seconds)),
        backends.deployer.serving(min(ASK_SECONDS, settings.deployer_timeout_seconds)),
        backends.autoscaler.serving(min(ASK_SECONDS, settings.autoscaler_timeout_seconds)),
        folds(backends, settings),
    )
    nats = backends.nats
    status = "unhealthy" if not nats.healthy else "ok" if registry_ok and nats.connected else "degraded"
    body = Health(
        status=status,
        nats=nats.connected,
        registry=registry_ok,
        schedulers=schedulers,
        dns=dns_ok,
        deployer=deployer_ok,
        autoscaler=autoscaler_ok,
        folds={
            name: FoldHealth(
                sequence=r.sequence, skipped=r.skipped, last_skipped_sequence=r.last_skipped_sequence or None
            )
            for name, r in answers.items()
        },
    )
    return JSONResponse(body.model_dump(mode="json"), 503 if status == "unhealthy" else 200)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, backends: BackendsDep, settings: SettingsDep) -> Response:
    gm: GatewayMetrics = request.app.state.metrics
    gm.set_folds(await folds(backends, settings))
    await PROCESS.refresh()  # the gateway's own fold lag
    return Response(gm.render(), media_type=CONTENT_TYPE_LATEST)
