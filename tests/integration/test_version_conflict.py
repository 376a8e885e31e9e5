"""A stale expected version says, in a detail a program reads, which version is current: over gRPC an
ErrorInfo (VERSION_CONFLICT, domain bay, current_version), over REST ``current_version`` in the 409's
body, which the gateway takes from the registry's detail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from bay.v1 import group_pb2, registry_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from libs.errors import Conflict
from libs.grpcutil import error_from_rpc
from tests.integration.gateway_harness import Stack, start_stack


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    s = await start_stack(fresh_stream, tmp_path)
    created = await s.client.post("/v1/groups", json={"name": "web", "cmd": "sleep 1000"}, headers=s.operator)
    assert created.status_code == 201
    updated = await s.client.put("/v1/groups/web", json={"cmd": "sleep 999"}, headers=s.operator)
    assert updated.json()["group"]["version"] == 2
    yield s
    await s.stop()


async def test_grpc_conflict_carries_error_info(stack: Stack) -> None:
    reg = stack.registry
    stale = registry_pb2.CommandOptions(expected_version=1)
    spec = group_pb2.GroupSpec(name="web", cmd="sleep 5", cluster="local")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await reg.stub.UpdateGroup(
            registry_pb2.UpdateGroupRequest(spec=spec, options=stale), metadata=reg.md()
        )
    assert info.value.code() == grpc.StatusCode.ABORTED
    status = rpc_status.from_call(info.value)  # type: ignore[arg-type]
    assert status is not None
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    detail = error_details_pb2.ErrorInfo()
    infos[0].Unpack(detail)
    assert (detail.reason, detail.domain, dict(detail.metadata)) == (
        "VERSION_CONFLICT",
        "bay",
        {"current_version": "2"},
    )
    err = error_from_rpc(info.value)
    assert isinstance(err, Conflict) and err.current_version == 2


async def test_other_conflicts_name_no_version(stack: Stack) -> None:
    reg = stack.registry
    spec = group_pb2.GroupSpec(name="web", cmd="sleep 5", cluster="local")
    with pytest.raises(grpc.aio.AioRpcError) as info:  # the name is taken: no version to retry against
        await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md())
    err = error_from_rpc(info.value)
    assert isinstance(err, Conflict) and err.current_version is None
    dup = await stack.client.post("/v1/groups", json={"name": "web", "cmd": "x"}, headers=stack.operator)
    assert dup.status_code == 409 and "current_version" not in dup.json()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/groups/web", {"cmd": "sleep 5"}),
        ("POST", "/v1/groups/web/scale", {"instances": 3}),
        ("POST", "/v1/groups/web/rollback", {"version": 1}),
        ("DELETE", "/v1/groups/web", None),
    ],
)
async def test_rest_conflict_body_has_current_version(
    stack: Stack, method: str, path: str, body: dict[str, object] | None
) -> None:
    before = await stack.last_sequence()
    resp = await stack.client.request(method, path, json=body, headers={**stack.operator, "If-Match": '"1"'})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "conflict" and resp.json()["current_version"] == 2
    assert await stack.last_sequence() == before
    # the version it names is the one that works
    retried = await stack.client.request(
        method, path, json=body, headers={**stack.operator, "If-Match": f'"{resp.json()["current_version"]}"'}
    )
    assert retried.status_code == 200, retried.text
