"""``/healthz`` and ``/metrics``: no token needed, nothing secret in them."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from services.gateway.deps import BackendsDep, SettingsDep
from services.gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from services.gateway.models import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(backends: BackendsDep, settings: SettingsDep) -> Health:
    """Whether the gateway's dependencies answer. The status code stays 200 when they do not
    (``status: degraded``): restarting the gateway would not bring the registry back. Schedulers
    and the DNS service are reported but do not make the gateway degraded: one cluster down leaves
    the others usable, and names resolve on the DNS port whatever the gateway says."""
    registry_ok, schedulers, dns_ok = await asyncio.gather(
        backends.registry.serving(min(1.0, settings.registry_timeout_seconds)),
        backends.schedulers.serving(min(1.0, settings.scheduler_timeout_seconds)),
        backends.dns.serving(min(1.0, settings.dns_timeout_seconds)),
    )
    nats_ok = backends.nats.connected
    return Health(
        status="ok" if registry_ok and nats_ok else "degraded",
        nats=nats_ok,
        registry=registry_ok,
        schedulers=schedulers,
        dns=dns_ok,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    gm: GatewayMetrics = request.app.state.metrics
    return Response(gm.render(), media_type=CONTENT_TYPE_LATEST)
