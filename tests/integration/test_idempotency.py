"""Idempotency keys over real gRPC (a real registry) and REST (a real gateway in front of it): a key
is bound to its command and target, a retry gets the first result, another request with the same
key is refused, and a no-op remembers its key, through a restart too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from bay.v1 import group_pb2, registry_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.gateway_harness import Stack, start_stack
from tests.integration.registry_harness import RunningRegistry, start_registry


def spec(name: str = "web", **kw: object) -> group_pb2.GroupSpec:
    return group_pb2.GroupSpec(name=name, cmd="sleep 1000", cluster="local", **kw)  # type: ignore[arg-type]


def key(k: str, expected_version: int = 0) -> registry_pb2.CommandOptions:
    return registry_pb2.CommandOptions(idempotency_key=k, expected_version=expected_version)


async def types(reg: RunningRegistry, name: str = "web") -> list[str]:
    hist = await reg.stub.GroupHistory(registry_pb2.GroupHistoryRequest(name=name), metadata=reg.md())
    return [e.envelope.type for e in hist.events]


def violation_fields(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    br = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(br)
    return [v.field for v in br.field_violations]


async def test_every_retried_group_command_gets_its_first_result(reg: RunningRegistry) -> None:
    s = reg.stub
    md = reg.md()
    calls = [
        (s.CreateGroup, registry_pb2.CreateGroupRequest(spec=spec(), options=key("c"))),
        (s.UpdateGroup, registry_pb2.UpdateGroupRequest(spec=spec(env={"V": "2"}), options=key("u", 1))),
        (s.ScaleGroup, registry_pb2.ScaleGroupRequest(name="web", instances=4, options=key("s"))),
        (s.RollbackGroup, registry_pb2.RollbackGroupRequest(name="web", version=1, options=key("r", 2))),
        (s.DeleteGroup, registry_pb2.DeleteGroupRequest(name="web", options=key("d"))),
    ]
    for rpc, request in calls:
        first = await rpc(request, metadata=md)
        again = await rpc(request, metadata=md)  # was ABORTED (create, update, rollback), NOT_FOUND (delete)
        assert again.duplicate and not first.duplicate
        assert again.sequence == first.sequence
        assert again.group == first.group  # the first result, not the state as it is now
    assert await types(reg) == [
        "GroupCreated",
        "GroupUpdated",
        "GroupScaled",
        "GroupRolledBack",
        "GroupDeleted",
    ]
    # the retry of the create answers with the group as the create left it, though it is deleted now
    first_create = await s.CreateGroup(calls[0][1], metadata=md)
    assert first_create.duplicate and first_create.group.version == 1 and not first_create.group.deleted


async def test_a_no_op_remembers_its_key_past_another_change_and_a_restart(
    fresh_stream: str, tmp_path: Path
) -> None:
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        s, md = reg.stub, reg.md()
        await s.RegisterCluster(
            registry_pb2.RegisterClusterRequest(cluster=group_pb2.Cluster(name="local", backend="local")),
            metadata=md,
        )
        await s.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec(instances=2)), metadata=md)
        noop = registry_pb2.ScaleGroupRequest(name="web", instances=2, options=key("stay-at-2"))
        first = await s.ScaleGroup(noop, metadata=md)
        assert not first.duplicate and first.group.spec.instances == 2
        await s.ScaleGroup(registry_pb2.ScaleGroupRequest(name="web", instances=7), metadata=md)

        again = await s.ScaleGroup(noop, metadata=md)  # was carried out again: back to 2
        assert again.duplicate and again.sequence == first.sequence and again.group.spec.instances == 2
        got = await s.GetGroup(registry_pb2.GetGroupRequest(name="web"), metadata=md)
        assert got.spec.instances == 7
        assert await types(reg) == ["GroupCreated", "NothingChanged", "GroupScaled"]
    finally:
        await reg.stop()

    # the key is in the log, not only in memory: a restart from a full replay still knows it
    (tmp_path / "snapshots" / "registry.snap").unlink(missing_ok=True)
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        md = reg.md()
        after = await reg.stub.ScaleGroup(noop, metadata=md)
        assert after.duplicate and after.sequence == first.sequence
        got = await reg.stub.GetGroup(registry_pb2.GetGroupRequest(name="web"), metadata=md)
        assert got.spec.instances == 7 and got.aggregate_version == 3
        assert reg.projection.state.skipped == 0  # the shared fold knows NothingChanged
    finally:
        await reg.stop()


async def test_a_key_used_for_another_request_is_refused_and_appends_nothing(reg: RunningRegistry) -> None:
    s, md = reg.stub, reg.md()
    await s.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec()), metadata=md)
    await s.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec("api")), metadata=md)
    await s.ScaleGroup(registry_pb2.ScaleGroupRequest(name="web", instances=3, options=key("k")), metadata=md)
    before = await reg.log.last_sequence()
    other_requests = [
        (s.ScaleGroup, registry_pb2.ScaleGroupRequest(name="api", instances=3, options=key("k"))),  # target
        (s.ScaleGroup, registry_pb2.ScaleGroupRequest(name="web", instances=4, options=key("k"))),  # params
        (s.DeleteGroup, registry_pb2.DeleteGroupRequest(name="web", options=key("k"))),  # command
        (
            s.RegisterCluster,  # another resource: was an internal error (KeyError)
            registry_pb2.RegisterClusterRequest(
                cluster=group_pb2.Cluster(name="eu", backend="local"), options=key("k")
            ),
        ),
    ]
    for rpc, request in other_requests:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await rpc(request, metadata=md)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        assert violation_fields(info.value) == ["idempotency_key"]
        assert "ScaleGroup of group web" in (info.value.details() or "")
    assert await reg.log.last_sequence() == before
    api = await s.GetGroup(registry_pb2.GetGroupRequest(name="api"), metadata=md)
    assert api.spec.instances == 1


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    st = await start_stack(fresh_stream, tmp_path)
    yield st
    await st.stop()


async def test_rest_retries_get_the_first_result_and_reuse_is_a_422(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    body = {"name": "web", "cmd": "sleep 1000", "instances": 2}
    first = await c.post("/v1/groups", json=body, headers={**op, "Idempotency-Key": "create-web"})
    again = await c.post("/v1/groups", json=body, headers={**op, "Idempotency-Key": "create-web"})
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text  # was 409: the group exists now
    assert again.json()["duplicate"] and again.json()["sequence"] == first.json()["sequence"]

    gone = await c.delete("/v1/groups/web", headers={**op, "Idempotency-Key": "drop-web"})
    gone_again = await c.delete("/v1/groups/web", headers={**op, "Idempotency-Key": "drop-web"})
    assert gone.status_code == 200 and gone_again.status_code == 200, gone_again.text  # was 404
    assert gone_again.json()["duplicate"] and gone_again.json()["group"]["deleted"]

    before = await stack.last_sequence()
    reused = await c.post(
        "/v1/clusters",
        json={"name": "eu", "backend": "local"},
        headers={**op, "Idempotency-Key": "create-web"},
    )
    assert reused.status_code == 422, reused.text  # was 500
    assert [v["field"] for v in reused.json()["violations"]] == ["Idempotency-Key"]
    assert "CreateGroup of group web" in reused.text
    assert await stack.last_sequence() == before
