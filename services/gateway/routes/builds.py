"""``/v1/builds``: builds registered once (an image by digest, or an artifact and its command),
deployable to any cluster by id."""

from __future__ import annotations

from bay.v1 import registry_pb2
from fastapi import APIRouter

from libs.errors import NotFound
from services.gateway.adapters import build_from_pb, build_to_pb
from services.gateway.body import validate_body
from services.gateway.deps import Document, Operator, Options, Registry, Viewer
from services.gateway.models import Build, BuildList, BuildRequest
from services.gateway.openapi import body_of

router = APIRouter(prefix="/v1/builds", tags=["builds"])


@router.get("")
async def list_builds(_: Viewer, registry: Registry) -> BuildList:
    reply: registry_pb2.ListBuildsReply = await registry.call(
        registry.stub.ListBuilds, registry_pb2.ListBuildsRequest()
    )
    return BuildList(builds=[build_from_pb(b) for b in reply.builds])


@router.post("", status_code=201, openapi_extra=body_of(BuildRequest))
async def register_build(_: Operator, doc: Document, opts: Options, registry: Registry) -> Build:
    body = validate_body(BuildRequest, doc)
    request = registry_pb2.RegisterBuildRequest(build=build_to_pb(body), options=opts)
    return build_from_pb(await registry.call(registry.stub.RegisterBuild, request, body_prefix="build."))


@router.get("/{build_id}")
async def get_build(build_id: str, _: Viewer, registry: Registry) -> Build:
    found = await registry.get_build(build_id)
    if found is None:
        raise NotFound(
            f"build {build_id!r} is not registered", hint="`bay builds` lists the registered builds"
        )
    return build_from_pb(found)
