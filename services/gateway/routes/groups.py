"""``/v1/groups``: describe, change, scale, roll back and delete groups (commands go to the registry)."""

from __future__ import annotations

from typing import Annotated, Any

from bay.v1 import registry_pb2
from fastapi import APIRouter, Query, Response

from libs.errors import FieldViolation, ValidationFailed
from libs.eventjson import event_dict
from libs.spec import GroupSpec, validate_spec
from libs.spec_pb import spec_to_pb
from services.gateway import timetravel
from services.gateway.adapters import group_from_pb, reply_from_pb
from services.gateway.body import validate_body
from services.gateway.deps import BackendsDep, Document, Operator, Options, Registry, Viewer
from services.gateway.history_models import GroupAt
from services.gateway.models import EventList, Group, GroupList, GroupReply, RollbackRequest, ScaleRequest
from services.gateway.openapi import body_of
from services.gateway.timetravel import AT_DESCRIPTION

router = APIRouter(prefix="/v1/groups", tags=["groups"])


def _etag(response: Response, version: int) -> None:
    """The spec version as an ETag: send it back in ``If-Match`` to change exactly that version."""
    response.headers["ETag"] = f'"{version}"'


def _replied(response: Response, reply: registry_pb2.GroupReply) -> GroupReply:
    _etag(response, reply.group.version)
    return reply_from_pb(reply)


def spec_for_path(doc: Any, name: str) -> GroupSpec:
    """A PUT body: the whole spec; its ``name`` may be left out, and if given must be the path's."""
    if isinstance(doc, dict):
        if "name" not in doc:
            doc = {**doc, "name": name}
        elif doc["name"] != name:
            raise ValidationFailed(
                [FieldViolation("name", f"must be {name!r} (the name in the path) or left out")]
            )
    return validate_spec(doc)


@router.get("")
async def list_groups(_: Viewer, registry: Registry, cluster: str = "", service: str = "") -> GroupList:
    reply: registry_pb2.ListGroupsReply = await registry.call(
        registry.stub.ListGroups, registry_pb2.ListGroupsRequest(cluster=cluster, service=service)
    )
    return GroupList(groups=[group_from_pb(g) for g in reply.groups])


@router.post("", status_code=201, openapi_extra=body_of(GroupSpec, "the group spec"))
async def create_group(
    _: Operator, doc: Document, opts: Options, registry: Registry, response: Response
) -> GroupReply:
    request = registry_pb2.CreateGroupRequest(spec=spec_to_pb(validate_spec(doc)), options=opts)
    reply: registry_pb2.GroupReply = await registry.call(
        registry.stub.CreateGroup, request, body_prefix="spec."
    )
    return _replied(response, reply)


@router.get("/{name}")
async def get_group(
    name: str,
    _: Viewer,
    registry: Registry,
    backends: BackendsDep,
    response: Response,
    at: Annotated[str | None, Query(description=AT_DESCRIPTION, max_length=64)] = None,
) -> GroupAt | Group:
    """The group now (from the registry), or with ``at`` as it was then (from the log; with the
    point reached, its instance count and its latest deployment then)."""
    if at is not None:
        return timetravel.group_model(await timetravel.resolve(backends.events, name, at))
    group = await registry.get_group(name)
    _etag(response, group.version)
    return group_from_pb(group)


@router.put("/{name}", openapi_extra=body_of(GroupSpec, "the whole new spec; `name` may be left out"))
async def update_group(
    name: str, _: Operator, doc: Document, opts: Options, registry: Registry, response: Response
) -> GroupReply:
    request = registry_pb2.UpdateGroupRequest(spec=spec_to_pb(spec_for_path(doc, name)), options=opts)
    reply: registry_pb2.GroupReply = await registry.call(
        registry.stub.UpdateGroup, request, body_prefix="spec."
    )
    return _replied(response, reply)


@router.post("/{name}/scale", openapi_extra=body_of(ScaleRequest))
async def scale_group(
    name: str, _: Operator, doc: Document, opts: Options, registry: Registry, response: Response
) -> GroupReply:
    body = validate_body(ScaleRequest, doc)
    opts.reason = body.reason
    request = registry_pb2.ScaleGroupRequest(name=name, instances=body.instances, options=opts)
    return _replied(response, await registry.call(registry.stub.ScaleGroup, request))


@router.post("/{name}/rollback", openapi_extra=body_of(RollbackRequest))
async def rollback_group(
    name: str, _: Operator, doc: Document, opts: Options, registry: Registry, response: Response
) -> GroupReply:
    body = validate_body(RollbackRequest, doc)
    request = registry_pb2.RollbackGroupRequest(name=name, version=body.version, options=opts)
    return _replied(response, await registry.call(registry.stub.RollbackGroup, request))


@router.delete("/{name}")
async def delete_group(
    name: str, _: Operator, opts: Options, registry: Registry, response: Response
) -> GroupReply:
    request = registry_pb2.DeleteGroupRequest(name=name, options=opts)
    return _replied(response, await registry.call(registry.stub.DeleteGroup, request))


@router.get("/{name}/history")
async def group_history(name: str, _: Viewer, registry: Registry) -> EventList:
    reply: registry_pb2.GroupHistoryReply = await registry.call(
        registry.stub.GroupHistory, registry_pb2.GroupHistoryRequest(name=name)
    )
    return EventList.model_validate(
        {"events": [event_dict(e.sequence, e.subject, e.envelope) for e in reply.events]}
    )
