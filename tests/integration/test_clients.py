"""libs/clients against real gRPC servers: the in-process registry (real NATS, real port), small
in-process schedulers (real grpc.aio servers with the Scheduler service), a port that refuses, one
that accepts and never answers, and a health servicer whose status a test sets.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from bay.v1 import group_pb2, registry_pb2, scheduler_pb2, scheduler_pb2_grpc, task_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from libs.clients import (
    SCHEDULER_SERVICE,
    Caller,
    Health,
    RegistryClient,
    SchedulerClient,
    SchedulerPool,
    ServiceClient,
    find_task,
    group_scheduler,
)
from libs.errors import Conflict, NotFound, Unauthenticated, Unavailable, ValidationFailed
from libs.grpcutil import make_server, metadata_value, translate_errors
from libs.natsserver import free_port
from libs.spec import validate_spec
from libs.spec_pb import spec_to_pb
from tests.integration.registry_harness import RunningRegistry, start_registry

QUICK = 1.0  # "at once": well under any deadline used here


@dataclass
class TaskBook(scheduler_pb2_grpc.SchedulerServicer):
    """A scheduler that knows some tasks; ``stall`` makes it accept calls and never answer."""

    cluster: str
    tasks: dict[str, task_pb2.Task] = field(default_factory=dict)
    stall: bool = False
    seen: list[tuple[str | None, str | None]] = field(default_factory=list)  # (authorization, correlation)

    @translate_errors
    async def GetTask(
        self, request: scheduler_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.Task:
        self.seen.append(
            (metadata_value(context, "authorization"), metadata_value(context, "x-correlation-id"))
        )
        if self.stall:
            await asyncio.Event().wait()
        if request.id not in self.tasks:
            raise NotFound(f"no task {request.id!r}")
        return self.tasks[request.id]


@dataclass
class FakeScheduler:
    book: TaskBook
    server: grpc.aio.Server
    addr: str

    async def stop(self) -> None:
        await self.server.stop(grace=0)


async def start_scheduler(cluster: str, *task_ids: str) -> FakeScheduler:
    book = TaskBook(cluster, {t: task_pb2.Task(id=t) for t in task_ids})
    server, port = await make_server(
        "127.0.0.1:0", [(scheduler_pb2_grpc.add_SchedulerServicer_to_server, book, SCHEDULER_SERVICE)]
    )
    await server.start()
    return FakeScheduler(book, server, f"127.0.0.1:{port}")


@pytest_asyncio.fixture
async def registry(fresh_stream: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    reg = await start_registry(fresh_stream, tmp_path)
    yield reg
    await reg.stop()


@pytest_asyncio.fixture
async def client(registry: RunningRegistry) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(
        f"127.0.0.1:{registry.port}", timeout=3.0, caller=Caller.bearer(registry.token, "test-corr")
    ) as c:
        yield c


async def create_group(client: RegistryClient, name: str, cluster: str) -> None:
    await client.register_cluster(group_pb2.Cluster(name=cluster, backend="local"))
    spec = spec_to_pb(validate_spec({"name": name, "cmd": "sleep 1", "cluster": cluster}))
    await client.call(client.stub.CreateGroup, registry_pb2.CreateGroupRequest(spec=spec))


async def test_a_silent_port_is_unavailable_by_the_deadline() -> None:
    """A port that accepts connections but never speaks gRPC: the deadline, not a hang."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        addr = f"127.0.0.1:{silent.getsockname()[1]}"
        async with RegistryClient(addr, timeout=0.3) as reg:
            began = time.monotonic()
            with pytest.raises(Unavailable) as info:
                await asyncio.wait_for(reg.get_group("web"), 5)
            assert time.monotonic() - began < 0.3 + QUICK
            assert info.value.message == f"the registry ({addr}) did not answer within 0.3 s"
            assert "Idempotency-Key" in info.value.hint
            assert not await reg.serving(0.2)


async def test_a_stalled_call_is_unavailable_by_the_deadline() -> None:
    sched = await start_scheduler("eu", "web.1")
    sched.book.stall = True
    try:
        async with SchedulerClient("eu", sched.addr, timeout=0.3, configured_by="the deployer") as client:
            began = time.monotonic()
            with pytest.raises(Unavailable) as info:
                await asyncio.wait_for(client.get_task("web.1"), 5)
            assert time.monotonic() - began < 0.3 + QUICK
            assert "the scheduler of cluster 'eu'" in info.value.message
            assert "within 0.3 s" in info.value.message
            assert "the deployer's BAY_SCHEDULERS" in info.value.hint
            assert await client.serving(1.0)  # the server as such is well: only the call stalls
    finally:
        await sched.stop()


def refusing_port() -> socket.socket:
    """A port that refuses connections and stays reserved while the socket is open (bound, not
    listening), so no server of a later test is given it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def test_a_refused_port_is_unavailable_at_once() -> None:
    with refusing_port() as reserved:
        await _refused_at_once(f"127.0.0.1:{reserved.getsockname()[1]}")


async def _refused_at_once(addr: str) -> None:
    async with SchedulerClient("eu", addr, timeout=10.0) as sched, RegistryClient(addr, timeout=10.0) as reg:
        for call, name in (
            (sched.get_task("web.1"), "the scheduler of cluster 'eu'"),
            (reg.list_groups(), "registry"),
        ):
            began = time.monotonic()
            with pytest.raises(Unavailable) as info:
                await call
            assert time.monotonic() - began < QUICK, "a refused port must not wait for the deadline"
            assert name in info.value.message and addr in info.value.message and info.value.hint
        with pytest.raises(Unavailable, match="scheduler of cluster 'eu'"):
            await sched.health()
        assert not await sched.serving()


async def test_a_service_up_on_a_port_that_refused_is_reached_at_once() -> None:
    """A client made after the service came up reaches it, whatever an earlier client saw on that
    port: each channel has its own connections (gRPC shares them by default, and the new channel then
    fails at once with the old "Connection refused" until the shared backoff ends)."""
    reserved = refusing_port()
    port = reserved.getsockname()[1]
    addr = f"127.0.0.1:{port}"
    async with SchedulerClient("eu", addr, timeout=5.0) as before:
        with pytest.raises(Unavailable):
            await before.get_task("web.1")
    reserved.close()
    book = TaskBook("eu", {"web.1": task_pb2.Task(id="web.1")})
    server, bound = await make_server(
        addr, [(scheduler_pb2_grpc.add_SchedulerServicer_to_server, book, SCHEDULER_SERVICE)]
    )
    await server.start()
    try:
        assert bound == port
        async with SchedulerClient("eu", addr, timeout=5.0) as after:
            assert (await after.get_task("web.1")).id == "web.1"
    finally:
        await server.stop(grace=0)


async def test_errors_come_back_with_their_fields(client: RegistryClient) -> None:
    with pytest.raises(NotFound, match="'nope'"):
        await client.get_group("nope")

    spec = spec_to_pb(validate_spec({"name": "web", "cmd": "sleep 1", "cluster": "mars"}))
    request = registry_pb2.CreateGroupRequest(spec=spec)
    with pytest.raises(ValidationFailed) as info:
        await client.call(client.stub.CreateGroup, request)
    assert [v.field for v in info.value.violations] == ["spec.cluster"]
    with pytest.raises(ValidationFailed) as info:
        await client.call(client.stub.CreateGroup, request, body_prefix="spec.")
    assert [v.field for v in info.value.violations] == ["cluster"]  # as the REST body names it

    await create_group(client, "web", "local")
    with pytest.raises(Conflict, match="already exists"):
        await create_group(client, "web", "local")
    with pytest.raises(Conflict, match="version"):
        await client.scale("web", 2, expected_version=7)
    with pytest.raises(ValidationFailed) as info:
        await client.scale("web", 1_000_000)
    assert [v.field for v in info.value.violations] == ["instances"]


async def test_typed_calls_and_the_caller_metadata(client: RegistryClient) -> None:
    await create_group(client, "web", "local")
    reply = await client.scale("web", 3, reason="autoscaler: cpu 93%", idempotency_key="k1")
    again = await client.scale("web", 3, reason="autoscaler: cpu 93%", idempotency_key="k1")
    assert reply.group.spec.instances == 3 and again.duplicate and not reply.duplicate
    assert [g.spec.name for g in await client.list_groups(cluster="local")] == ["web"]
    assert await client.list_groups(cluster="elsewhere") == []
    assert await client.group_cluster("web") == "local"
    assert [c.name for c in await client.list_clusters()] == ["local"]

    history: registry_pb2.GroupHistoryReply = await client.call(
        client.stub.GroupHistory, registry_pb2.GroupHistoryRequest(name="web")
    )
    assert {e.envelope.correlation_id for e in history.events} == {"test-corr"}

    anonymous = client.with_caller(Caller())  # same channel, no token
    assert anonymous.channel is client.channel
    with pytest.raises(Unauthenticated):
        await anonymous.scale("web", 1)


async def test_health_serving_and_not_serving() -> None:
    servicer = health.aio.HealthServicer()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set(SCHEDULER_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        async with ServiceClient(f"127.0.0.1:{port}", timeout=2.0) as whole:
            assert await whole.health() == Health.SERVING and await whole.serving()
            sched = SchedulerClient("local", f"127.0.0.1:{port}", timeout=2.0)
            assert await sched.health() == Health.NOT_SERVING and not await sched.serving()
            await servicer.set(SCHEDULER_SERVICE, health_pb2.HealthCheckResponse.SERVING)
            assert await sched.health() == Health.SERVING
            await sched.close()
            other = ServiceClient(f"127.0.0.1:{port}", timeout=2.0, health_service="bay.v1.Nothing")
            assert await other.health() == Health.SERVICE_UNKNOWN
            await other.close()
    finally:
        await server.stop(grace=0)


async def test_until_serving_waits_for_a_service_that_starts_late() -> None:
    port = free_port()
    async with ServiceClient(f"127.0.0.1:{port}", timeout=1.0) as probe:
        waiting = asyncio.create_task(probe.until_serving(poll_seconds=0.05))
        with pytest.raises(Unavailable):  # the port refuses: the probe keeps polling
            await probe.health()
        assert not waiting.done()
        server, _ = await make_server(f"127.0.0.1:{port}", [])
        await server.start()
        try:
            await asyncio.wait_for(waiting, 10)
        finally:
            await server.stop(grace=0)


async def test_the_scheduler_of_a_group_and_of_a_task(
    client: RegistryClient, registry: RunningRegistry
) -> None:
    a = await start_scheduler("a", "web.1")
    b = await start_scheduler("b", "web.old")
    pool = SchedulerPool({"a": a.addr, "b": b.addr}, timeout=2.0, caller=Caller.bearer("t", "corr-7"))
    try:
        await create_group(client, "web", "a")
        assert (await group_scheduler(client, pool, "web")).cluster == "a"
        sched, task = await find_task(client, pool, "web.1")
        assert (sched.cluster, task.id) == ("a", "web.1")
        assert a.book.seen[-1] == ("Bearer t", "corr-7")  # the pool's caller, not the registry's
        # a task the owner does not know (moved, draining elsewhere) is looked for in the others
        sched, task = await find_task(client, pool, "web.old")
        assert (sched.cluster, task.id) == ("b", "web.old")

        await client.call(client.stub.DeleteGroup, registry_pb2.DeleteGroupRequest(name="web"))
        with pytest.raises(NotFound):
            await group_scheduler(client, pool, "web")
        sched, task = await find_task(client, pool, "web.1")  # the group is gone, its task is not
        assert (sched.cluster, task.id) == ("a", "web.1")
        with pytest.raises(NotFound, match="any cluster"):
            await find_task(client, pool, "web.nothing")
        with pytest.raises(NotFound) as not_an_id:
            await find_task(client, pool, "no-dot")
        assert "<group>.<uuid>" in not_an_id.value.hint

        await b.stop()  # unsure now: b may know the task
        with pytest.raises(Unavailable, match="those of b did not answer"):
            await find_task(client, pool, "web.nothing")

        await create_group(client, "db", "c")  # a cluster without a configured scheduler
        with pytest.raises(Unavailable, match="knows no scheduler for cluster 'c'") as info:
            await group_scheduler(client, pool, "db")
        assert "BAY_SCHEDULERS" in info.value.hint
        assert await pool.serving(1.0) == {"a": True, "b": False}
    finally:
        await pool.close()
        await a.stop()
        await b.stop()
