"""``/v1/deployments`` and ``/v1/groups/{name}/deploy``: deployments of a group, their controls and a
server-sent stream of one's progress (commands go to the deployer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from bay.v1 import deploy_pb2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from libs.errors import Conflict, FieldViolation, ValidationFailed
from libs.spec import validate_spec
from libs.spec_pb import spec_to_pb
from services.gateway.adapters import deployment_from_pb, deployment_reply_from_pb, strategy_to_pb
from services.gateway.body import media_kind, parse_json, parse_yaml, read_limited, validate_body
from services.gateway.deploy_models import (
    ControlRequest,
    Deployment,
    DeploymentList,
    DeploymentReply,
    DeployRequest,
)
from services.gateway.deps import (
    BackendsDep,
    Deployer,
    Document,
    IdempotencyKey,
    Operator,
    SettingsDep,
    Viewer,
)
from services.gateway.openapi import body_of
from services.gateway.sse import model_stream

router = APIRouter(tags=["deployments"])

SECOND_DEPLOYMENT_HINT = (
    "one deployment of a group runs at a time: wait for it, pause or abort it "
    "(POST /v1/groups/{name}/deployment/abort), or send supersede: true to replace it on purpose"
)


def _spec_of(doc: dict[str, Any], name: str) -> Any:
    """The body's spec: its ``name`` may be left out, and if given must be the path's."""
    if "name" not in doc:
        return {**doc, "name": name}
    if doc["name"] != name:
        raise ValidationFailed(
            [FieldViolation("spec.name", f"must be {name!r} (the name in the path) or left out")]
        )
    return doc


@router.post(
    "/v1/groups/{name}/deploy",
    status_code=201,
    openapi_extra=body_of(DeployRequest, "a build id or a whole new spec, a strategy"),
)
async def deploy(
    name: str, _: Operator, doc: Document, key: IdempotencyKey, deployer: Deployer
) -> DeploymentReply:
    """Start a deployment of the group to a registered build, a new spec, or another cluster.

    A second deployment while one of the group runs is a 409, unless ``supersede``."""
    body = validate_body(DeployRequest, doc)
    if body.build and body.spec is not None:
        raise ValidationFailed([FieldViolation("build", "give build or spec, not both")])
    if not (body.build or body.spec is not None or body.cluster):
        raise ValidationFailed([FieldViolation("build", "give a build, a spec or a cluster to deploy")])
    spec = None if body.spec is None else spec_to_pb(validate_spec(_spec_of(body.spec, name), prefix="spec"))
    try:
        reply = await deployer.deploy(
            name,
            build=body.build,
            spec=spec,
            cluster=body.cluster,
            strategy=strategy_to_pb(body.strategy),
            supersede=body.supersede,
            reason=body.reason,
            idempotency_key=key,
        )
    except Conflict as exc:
        if exc.hint in ("", Conflict.hint):  # the generic one: say how to go on from here
            exc.hint = SECOND_DEPLOYMENT_HINT.replace("{name}", name)
        raise
    return deployment_reply_from_pb(reply)


@router.get("/v1/deployments")
async def list_deployments(
    _: Viewer,
    deployer: Deployer,
    group: Annotated[str, Query(max_length=63, description="only this group's; empty: every group's")] = "",
    limit: Annotated[int, Query(ge=0, le=1000, description="at most this many; 0: 100")] = 0,
) -> DeploymentList:
    """Deployments, newest first."""
    found = await deployer.list(group, limit=limit)
    return DeploymentList(deployments=[deployment_from_pb(d) for d in found])


@router.get("/v1/deployments/{deployment_id}")
async def get_deployment(deployment_id: str, _: Viewer, deployer: Deployer) -> Deployment:
    return deployment_from_pb(await deployer.get(deployment_id))


@router.get("/v1/groups/{name}/deployment")
async def current_deployment(name: str, _: Viewer, deployer: Deployer) -> Deployment:
    """The group's running deployment, else its last one; 404 if it never had one."""
    return deployment_from_pb(await deployer.get(group=name))


@router.get(
    "/v1/groups/{name}/deployment/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream_deployment(
    name: str, _: Viewer, deployer: Deployer, backends: BackendsDep, settings: SettingsDep
) -> StreamingResponse:
    """The group's deployment now, then at every change (``event: deployment``, ``data``: the
    Deployment), keep-alive comments when quiet; the stream ends when the deployment does.
    ``bay rollout status --watch`` follows it."""
    replies = await deployer.watch(group=name, first_within=settings.deployer_timeout_seconds)
    body = model_stream(
        _deployments(replies), "deployment", heartbeat=settings.sse_heartbeat_seconds, stop=backends.closing
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def _deployments(replies: AsyncIterator[deploy_pb2.Deployment]) -> AsyncIterator[Deployment]:
    async for reply in replies:
        yield deployment_from_pb(reply)


# ---- controls of the group's running deployment ----


async def control_body(request: Request, _: Operator, backends: BackendsDep) -> ControlRequest:
    """An optional body (``{"reason": ...}``): a control is mostly sent without one."""
    kind = media_kind(request.headers.get("content-type"))
    raw = await read_limited(request, backends.max_body_bytes)
    if not raw.strip():
        return ControlRequest()
    doc = parse_json(raw) if kind == "json" else await run_in_threadpool(parse_yaml, raw)
    return validate_body(ControlRequest, doc)


Control = Annotated[ControlRequest, Depends(control_body)]
_CONTROL_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ControlRequest"}},
            "application/yaml": {"schema": {"$ref": "#/components/schemas/ControlRequest"}},
        },
    }
}
body_of(ControlRequest)  # puts the schema in the document


@router.post("/v1/groups/{name}/deployment/pause", openapi_extra=_CONTROL_BODY)
async def pause(name: str, body: Control, key: IdempotencyKey, deployer: Deployer) -> DeploymentReply:
    """Hold the deployment where it is (the progress deadline stops counting)."""
    return deployment_reply_from_pb(await deployer.pause(name, reason=body.reason, idempotency_key=key))


@router.post("/v1/groups/{name}/deployment/resume", openapi_extra=_CONTROL_BODY)
async def resume(name: str, body: Control, key: IdempotencyKey, deployer: Deployer) -> DeploymentReply:
    return deployment_reply_from_pb(await deployer.resume(name, reason=body.reason, idempotency_key=key))


@router.post("/v1/groups/{name}/deployment/promote", openapi_extra=_CONTROL_BODY)
async def promote(
    name: str,
    body: Control,
    key: IdempotencyKey,
    deployer: Deployer,
    all_: Annotated[bool, Query(alias="all", description="skip every remaining step")] = False,
) -> DeploymentReply:
    """On to the next step (past a pause until promoted), or with ``all=true`` past every one."""
    reply = await deployer.promote(name, all_steps=all_, reason=body.reason, idempotency_key=key)
    return deployment_reply_from_pb(reply)


@router.post("/v1/groups/{name}/deployment/abort", openapi_extra=_CONTROL_BODY)
async def abort(name: str, body: Control, key: IdempotencyKey, deployer: Deployer) -> DeploymentReply:
    """Back to exactly the last stable version and build, nothing of the new one left."""
    return deployment_reply_from_pb(await deployer.abort(name, reason=body.reason, idempotency_key=key))


@router.post("/v1/groups/{name}/deployment/undo", openapi_extra=_CONTROL_BODY)
async def undo(name: str, body: Control, key: IdempotencyKey, deployer: Deployer) -> DeploymentReply:
    """A new deployment back to the version before the group's last successful deployment."""
    return deployment_reply_from_pb(await deployer.undo(name, reason=body.reason, idempotency_key=key))
