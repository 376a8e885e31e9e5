"""Hostile input gets a 4xx naming the field (REST through a real gateway) or INVALID_ARGUMENT (raw
gRPC to every Bay service), never a 500 or UNKNOWN; and types are strict at the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from bay.v1 import group_pb2, registry_pb2

from tests.integration.gateway_harness import Stack, start_stack
from tests.integration.scheduler_harness import SchedulerProcess


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    st = await start_stack(fresh_stream, tmp_path)
    made = await st.client.post("/v1/groups", json={"name": "web", "cmd": "sleep 1000"}, headers=st.operator)
    assert made.status_code == 201, made.text
    yield st
    await st.stop()


def fields(resp: Any) -> list[str]:
    return [v["field"] for v in resp.json().get("violations") or []]


HUGE = "9" * 5000


async def test_out_of_range_numbers_are_4xx_naming_the_field(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    before = await stack.last_sequence()
    cases = [
        ("POST", "/v1/groups/web/rollback", {"version": 2**70}, {}, "version"),
        ("POST", "/v1/groups/web/scale", {"instances": 2**70}, {}, "instances"),
        ("POST", "/v1/groups/web/scale", {"instances": 1}, {"If-Match": str(10**30)}, "If-Match"),
        ("POST", "/v1/groups/web/scale", {"instances": 1}, {"If-Match": HUGE}, "If-Match"),
        ("DELETE", "/v1/groups/web", None, {"If-Match": f'"{10**30}"'}, "If-Match"),
    ]
    for method, path, body, headers, field in cases:
        resp = await c.request(method, path, json=body, headers={**op, **headers})
        assert resp.status_code == 422, (path, headers, resp.text)
        assert field in fields(resp), resp.text
    assert await stack.last_sequence() == before


async def test_hostile_query_path_and_header_values_are_4xx(stack: Stack) -> None:
    c, view = stack.client, stack.viewer
    after = await c.get("/v1/events", params={"after": "1e23"}, headers=view)
    assert after.status_code == 422 and "after" in after.text, after.text
    for value in (str(2**70), HUGE):
        after = await c.get("/v1/events", params={"after": value}, headers=view)
        assert after.status_code == 422 and "after" in after.text, after.text[:300]
        start = await c.get("/v1/events/stream", params={"from": value}, headers=view)
        assert start.status_code == 422 and "from" in start.text, start.text[:300]

    resumed = await c.get("/v1/events/stream", headers={**view, "Last-Event-ID": HUGE})
    assert resumed.status_code == 422 and "Last-Event-ID" in fields(resumed), resumed.text

    long_name = "a" * 8000
    got = await c.get(f"/v1/groups/{long_name}", headers=view)
    assert got.status_code in (404, 422), got.text[:300]
    assert len(got.text) < 2000  # the name is not echoed back in full
    scaled = await c.post(f"/v1/groups/{long_name}/scale", json={"instances": 1}, headers=stack.operator)
    assert scaled.status_code in (404, 422), scaled.text[:300]


async def test_numbers_are_numbers_and_finite(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    before = await stack.last_sequence()
    for body, field in [
        ({"instances": "5"}, "instances"),
        ({"instances": True}, "instances"),
        ({"instances": 2.0}, "instances"),
    ]:
        resp = await c.post("/v1/groups/web/scale", json=body, headers=op)
        assert resp.status_code == 422 and field in fields(resp), resp.text
    bad_specs: list[tuple[bytes, str]] = [
        (b'{"name": "api", "cmd": "x", "instances": "5"}', "instances"),
        (b'{"name": "api", "cmd": "x", "instances": true}', "instances"),
        (b'{"name": "api", "cmd": "x", "resources": {"disk": Infinity}}', "resources.disk"),
        (b'{"name": "api", "cmd": "x", "resources": {"cpus": NaN}}', "resources.cpus"),
        (b'{"name": "api", "cmd": "x", "resources": {"mem": "128"}}', "resources.mem"),
        (b'{"name": "api", "cmd": "x", "resources": {"mem": 1e999}}', "resources.mem"),
    ]
    for raw, field in bad_specs:
        resp = await c.post("/v1/groups", content=raw, headers={**op, "Content-Type": "application/json"})
        assert resp.status_code == 422, (raw, resp.text)
        assert field in fields(resp), (raw, resp.text)
    yaml = b"name: api\ncmd: x\nresources:\n  disk: .inf\n"
    resp = await c.post("/v1/groups", content=yaml, headers={**op, "Content-Type": "application/yaml"})
    assert resp.status_code == 422 and "resources.disk" in fields(resp), resp.text
    assert await stack.last_sequence() == before


async def test_non_finite_numbers_over_grpc_are_refused(stack: Stack) -> None:
    reg = stack.registry
    for resources in [
        group_pb2.Resources(cpus=0.1, mem=128, disk=float("inf")),
        group_pb2.Resources(cpus=float("nan"), mem=128),
        group_pb2.Resources(cpus=0.1, mem=float("-inf")),
    ]:
        spec = group_pb2.GroupSpec(name="api", cmd="x", cluster="local", resources=resources)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md())
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "spec.resources." in (info.value.details() or "")


GARBAGE = bytes(range(256)) * 4  # not a valid protobuf message of any type here


async def refuses_garbage(
    ch: grpc.aio.Channel, md: list[tuple[str, str]], unary: list[str], streaming: list[str]
) -> None:
    for method in unary:
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(GARBAGE, metadata=md, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, info.value)  # was UNKNOWN
        assert "request" in (info.value.details() or ""), method
    for method in streaming:
        stream = ch.unary_stream(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stream(GARBAGE, metadata=md, timeout=5):
                pass
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, info.value)


async def test_random_bytes_over_grpc_are_invalid_argument(
    stack: Stack, fresh_stream: str, tmp_path: Path
) -> None:
    reg = stack.registry
    registry = [f"/bay.v1.Registry/{m}" for m in ("CreateGroup", "ScaleGroup", "GetGroup", "ListClusters")]
    await refuses_garbage(
        reg.channel, reg.md(), [*registry, "/grpc.health.v1.Health/Check"], ["/bay.v1.Registry/Watch"]
    )
    sched = SchedulerProcess(reg, fresh_stream, tmp_path / "sched")
    sched.data_dir.mkdir()
    (sched.data_dir / "tokens.json").write_bytes((tmp_path / "tokens.json").read_bytes())
    await sched.start()
    try:
        assert sched.chan is not None
        await refuses_garbage(
            sched.chan,
            reg.md(),
            ["/bay.v1.Scheduler/GetTask", "/bay.v1.Scheduler/KillTask", "/bay.v1.Scheduler/GroupStatus"],
            ["/bay.v1.Scheduler/TaskLogs", "/bay.v1.Scheduler/WatchGroup"],
        )
    finally:
        await sched.stop()
