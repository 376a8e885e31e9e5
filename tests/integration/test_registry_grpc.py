"""The registry over real gRPC on a real nats-server."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from bay.v1 import group_pb2, registry_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.registry_harness import RunningRegistry


def web_spec(name: str = "web", **kw: object) -> group_pb2.GroupSpec:
    spec = group_pb2.GroupSpec(name=name, cmd="sleep 1000", cluster="local", **kw)  # type: ignore[arg-type]
    return spec


async def test_create_scale_get_and_history(reg: RunningRegistry) -> None:
    created = await reg.stub.CreateGroup(
        registry_pb2.CreateGroupRequest(spec=web_spec(instances=2)), metadata=reg.md()
    )
    assert created.group.version == 1 and created.group.spec.instances == 2
    scaled = await reg.stub.ScaleGroup(
        registry_pb2.ScaleGroupRequest(name="web", instances=5), metadata=reg.md()
    )
    assert scaled.group.spec.instances == 5 and scaled.group.version == 1
    got = await reg.stub.GetGroup(registry_pb2.GetGroupRequest(name="web"), metadata=reg.md())
    assert got.spec.instances == 5
    hist = await reg.stub.GroupHistory(registry_pb2.GroupHistoryRequest(name="web"), metadata=reg.md())
    assert [e.envelope.type for e in hist.events] == ["GroupCreated", "GroupScaled"]
    assert hist.events[1].envelope.actor == "ops"
    assert [e.envelope.aggregate_version for e in hist.events] == [1, 2]


async def test_invalid_spec_names_fields_and_appends_nothing(reg: RunningRegistry) -> None:
    before = await reg.log.last_sequence()
    bad = group_pb2.GroupSpec(name="Not_A_Label", cmd="x", instances=-3)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=bad), metadata=reg.md())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(info.value)  # type: ignore[arg-type]
    assert status is not None
    br = error_details_pb2.BadRequest()
    assert any(d.Unpack(br) for d in status.details if d.Is(br.DESCRIPTOR))
    fields = {v.field for v in br.field_violations}
    assert {"spec.name", "spec.instances"} <= fields
    assert await reg.log.last_sequence() == before


async def test_mutation_needs_operator_token(reg: RunningRegistry) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=web_spec()))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await reg.stub.CreateGroup(
            registry_pb2.CreateGroupRequest(spec=web_spec()), metadata=reg.md(reg.viewer_token)
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_concurrent_updates_exactly_one_wins(reg: RunningRegistry) -> None:
    await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=web_spec()), metadata=reg.md())

    async def update(i: int) -> grpc.StatusCode:
        spec = web_spec(env={"ROUND": str(i)})
        opts = registry_pb2.CommandOptions(expected_version=1)
        try:
            await reg.stub.UpdateGroup(
                registry_pb2.UpdateGroupRequest(spec=spec, options=opts), metadata=reg.md()
            )
            return grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    codes = await asyncio.gather(*(update(i) for i in range(8)))
    assert codes.count(grpc.StatusCode.OK) == 1
    assert codes.count(grpc.StatusCode.ABORTED) == 7
    got = await reg.stub.GetGroup(registry_pb2.GetGroupRequest(name="web"), metadata=reg.md())
    assert got.version == 2


async def test_idempotent_retry_appends_once(reg: RunningRegistry) -> None:
    await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=web_spec()), metadata=reg.md())
    opts = registry_pb2.CommandOptions(idempotency_key="scale-42")
    first = await reg.stub.ScaleGroup(
        registry_pb2.ScaleGroupRequest(name="web", instances=3, options=opts), metadata=reg.md()
    )
    again = await reg.stub.ScaleGroup(
        registry_pb2.ScaleGroupRequest(name="web", instances=3, options=opts), metadata=reg.md()
    )
    assert again.duplicate and again.sequence == first.sequence
    hist = await reg.stub.GroupHistory(registry_pb2.GroupHistoryRequest(name="web"), metadata=reg.md())
    assert [e.envelope.type for e in hist.events] == ["GroupCreated", "GroupScaled"]


async def test_rollback_restores_spec_keeps_instances(reg: RunningRegistry) -> None:
    await reg.stub.CreateGroup(
        registry_pb2.CreateGroupRequest(spec=web_spec(env={"V": "1"})), metadata=reg.md()
    )
    await reg.stub.UpdateGroup(
        registry_pb2.UpdateGroupRequest(spec=web_spec(env={"V": "2"})), metadata=reg.md()
    )
    await reg.stub.ScaleGroup(registry_pb2.ScaleGroupRequest(name="web", instances=4), metadata=reg.md())
    rb = await reg.stub.RollbackGroup(
        registry_pb2.RollbackGroupRequest(name="web", version=1), metadata=reg.md()
    )
    assert rb.group.version == 3 and rb.group.spec.env["V"] == "1" and rb.group.spec.instances == 4


async def test_watch_replays_from_a_sequence_then_follows(reg: RunningRegistry) -> None:
    await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=web_spec()), metadata=reg.md())
    call = reg.stub.Watch(
        registry_pb2.WatchRequest(from_sequence=1, subject_filter="bay.ev.group.>"),
        metadata=reg.md(reg.viewer_token),
    )
    stream = call.__aiter__()
    first = await asyncio.wait_for(stream.__anext__(), 5)
    assert (first.subject, first.envelope.type) == (
        "bay.ev.group.web",
        "GroupCreated",
    )  # cluster event filtered
    await reg.stub.ScaleGroup(registry_pb2.ScaleGroupRequest(name="web", instances=4), metadata=reg.md())
    live = await asyncio.wait_for(stream.__anext__(), 5)
    assert live.envelope.type == "GroupScaled" and live.sequence > first.sequence
    call.cancel()


async def test_watch_needs_a_token(reg: RunningRegistry) -> None:
    call = reg.stub.Watch(registry_pb2.WatchRequest())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await asyncio.wait_for(call.__aiter__().__anext__(), 5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_standard_grpc_tools_work_health_and_reflection(reg: RunningRegistry) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    health = health_pb2_grpc.HealthStub(reg.channel)
    for service in ("", "bay.v1.Registry"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(reg.channel)
    call = refl.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    reply = await asyncio.wait_for(call.read(), 5)
    names = {s.name for s in reply.list_services_response.service}
    assert {"bay.v1.Registry", "grpc.health.v1.Health"} <= names
    await call.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol="bay.v1.Registry"))
    described = await asyncio.wait_for(call.read(), 5)
    assert described.file_descriptor_response.file_descriptor_proto  # a client can learn the API
    await call.done_writing()
