"""``/v1/groups/{name}/autoscale`` and ``/v1/autoscale``: a group's autoscaling policy, its status (the
latest values against their targets, the last decisions, why nothing happens now), and every policy.
Commands go to the autoscaler."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter

from libs.errors import FieldViolation, ValidationFailed
from services.gateway.autoscale_adapters import (
    policy_from_pb,
    policy_reply_from_pb,
    policy_to_pb,
    status_from_pb,
)
from services.gateway.autoscale_models import (
    AutoscaleStatus,
    Policy,
    PolicyList,
    PolicyReply,
    PolicyRequest,
    RemovedReply,
)
from services.gateway.body import validate_body
from services.gateway.deps import Autoscaler, Document, IdempotencyKey, Operator, Viewer
from services.gateway.openapi import body_of

router = APIRouter(tags=["autoscale"])


def _body_field(field: str) -> str:
    """The autoscaler names a policy's fields inside its request (``policy.metrics.0.target``);
    the REST body is the policy itself (``metrics.0.target``)."""
    return field.removeprefix("policy.")


@router.put(
    "/v1/groups/{name}/autoscale",
    openapi_extra=body_of(PolicyRequest, "the group's policy: bounds, metric targets, behaviours"),
)
async def set_policy(
    name: str, _: Operator, doc: Document, key: IdempotencyKey, autoscaler: Autoscaler
) -> PolicyReply:
    """Set (create or replace) the group's autoscaling policy. From then on the autoscaler owns the
    group's instance count between ``min`` and ``max``."""
    body = validate_body(PolicyRequest, doc)
    if body.group and body.group != name:
        raise ValidationFailed(
            [FieldViolation("group", f"must be {name!r} (the name in the path) or left out")]
        )
    try:
        reply = await autoscaler.set_policy(policy_to_pb(name, body), reason=body.reason, idempotency_key=key)
    except ValidationFailed as exc:
        raise ValidationFailed([replace(v, field=_body_field(v.field)) for v in exc.violations]) from None
    return policy_reply_from_pb(reply)


@router.get("/v1/groups/{name}/autoscale")
async def get_policy(name: str, _: Viewer, autoscaler: Autoscaler) -> Policy:
    """The group's policy; 404 if it has none (it is not autoscaled)."""
    return policy_from_pb(await autoscaler.get_policy(name))


@router.delete("/v1/groups/{name}/autoscale")
async def remove_policy(name: str, _: Operator, key: IdempotencyKey, autoscaler: Autoscaler) -> RemovedReply:
    """The group is no longer autoscaled; its instance count stays where it is."""
    return RemovedReply(removed=await autoscaler.remove_policy(name, idempotency_key=key))


@router.get("/v1/groups/{name}/autoscale/status")
async def autoscale_status(name: str, _: Viewer, autoscaler: Autoscaler) -> AutoscaleStatus:
    """The policy, the group's count and ready tasks, the latest evaluation (each metric's value
    against its target and what it asks for), the last decisions, and why nothing happens now."""
    return status_from_pb(await autoscaler.status(name))


@router.get("/v1/autoscale")
async def list_policies(_: Viewer, autoscaler: Autoscaler) -> PolicyList:
    """Every autoscaled group's policy."""
    return PolicyList(policies=[policy_from_pb(p) for p in await autoscaler.list_policies()])
