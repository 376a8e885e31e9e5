"""Usage batches on the session's real nats-server: what the autoscaler will subscribe to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import nats
import pytest
import pytest_asyncio
from bay.v1.scheduler_pb2 import UsageBatch
from nats.aio.client import Client
from nats.aio.msg import Msg

from libs.natsconn import connect
from services.scheduler.adapters.usage import UsagePublisher, UsageSampler, publish_usage, usage_subject
from services.scheduler.ports import TaskUsage
from tests.conftest import NatsProcess
from tests.poll import poll_until

DEADLINE = 10.0
LOGGER = "bay.scheduler.usage"


class Backend:
    """A plain async function's state: web.1 burns half a core, api.1 a quarter, per call of 2 s."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_calls: set[int] = set()

    async def usage(self) -> list[TaskUsage]:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise OSError("cgroup gone")
        at = 1000.0 + 2.0 * self.calls
        return [
            TaskUsage("web.1", at, 0.5 * 2.0 * self.calls, 10 << 20, 1.0, 64 << 20),
            TaskUsage("api.1", at, 0.25 * 2.0 * self.calls, 20 << 20, 0.5, 32 << 20),
            TaskUsage("orphan.1", at, 1.0, 1),  # a task the scheduler does not know: not sent
        ]


def group_of(task_id: str) -> str | None:
    return {"web.1": "web", "api.1": "api"}.get(task_id)


@pytest_asyncio.fixture
async def nc(nats_server: NatsProcess) -> AsyncIterator[Client]:
    if not nats_server.running:
        nats_server.start()
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.close()


async def subscribe(nc: Client, cluster: str) -> asyncio.Queue[tuple[str, UsageBatch]]:
    received: asyncio.Queue[tuple[str, UsageBatch]] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await received.put((msg.subject, UsageBatch.FromString(msg.data)))

    await nc.subscribe(f"bay.usage.{cluster}.>", cb=on_msg)
    await nc.flush()
    return received


async def next_batch(received: asyncio.Queue[tuple[str, UsageBatch]], group: str) -> tuple[str, UsageBatch]:
    async def scan() -> tuple[str, UsageBatch]:
        while (got := await received.get())[1].group != group:
            pass
        return got

    return await asyncio.wait_for(scan(), DEADLINE)


async def test_publisher_sends_one_batch_per_group(nc: Client) -> None:
    received = await subscribe(nc, "pub1")
    backend = Backend()
    publisher = UsagePublisher(nc, backend.usage, group_of, "pub1", interval=0.05)
    publisher.start()
    try:
        subject, first = await next_batch(received, "web")
        assert subject == "bay.usage.pub1.web"
        assert first.cluster == "pub1"
        assert [
            (s.task_id, s.HasField("cpu_fraction"), s.mem_bytes, s.mem_limit_bytes) for s in first.samples
        ] == [("web.1", False, 10 << 20, 64 << 20)]  # a first sample has no rate yet
        _, second = await next_batch(received, "web")
        assert second.samples[0].cpu_fraction == pytest.approx(0.5)
        _, api = await next_batch(received, "api")
        assert api.samples[0].task_id == "api.1"
        assert api.samples[0].cpus_limit == 0.5
    finally:
        await publisher.stop()
    seen = [b.group for _, b in [received.get_nowait() for _ in range(received.qsize())]]
    assert "orphan" not in seen and "" not in seen


async def test_publish_usage_serializes_and_flushes(nc: Client) -> None:
    received = await subscribe(nc, "pub2")
    sampler = UsageSampler("pub2")
    batches = sampler.batches([TaskUsage("web.1", 1.0, 2.0, 3)], group_of)
    await publish_usage(nc, batches)
    subject, batch = await asyncio.wait_for(received.get(), DEADLINE)
    assert subject == usage_subject("pub2", "web")
    assert batch == batches[0]


async def test_failing_backend_warns_once_and_recovers(nc: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    received = await subscribe(nc, "pub3")
    backend = Backend()
    backend.fail_calls = {1, 2, 3, 4}
    publisher = UsagePublisher(nc, backend.usage, group_of, "pub3", interval=0.02)
    publisher.start()
    try:
        _, batch = await next_batch(received, "web")
    finally:
        await publisher.stop()
    assert backend.calls >= 5
    assert not batch.samples[0].HasField("cpu_fraction")  # the first sample after the outage: no rate
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cgroup gone" in warnings[0].getMessage()
    assert any("works again" in r.getMessage() for r in caplog.records if r.name == LOGGER)


async def test_closed_connection_warns_once_and_the_loop_goes_on(
    nats_server: NatsProcess, caplog: pytest.LogCaptureFixture
) -> None:
    if not nats_server.running:
        nats_server.start()
    caplog.set_level(logging.INFO, logger=LOGGER)
    gone = await nats.connect(nats_server.url)
    await gone.close()  # a connection that is down for good
    backend = Backend()
    publisher = UsagePublisher(gone, backend.usage, group_of, "pub4", interval=0.01)
    publisher.start()
    try:
        # the loop keeps sampling while NATS is down
        await poll_until(lambda: backend.calls >= 5, "sampling while NATS is down", DEADLINE)
    finally:
        await publisher.stop()
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "NATS" in warnings[0].getMessage()


async def test_nats_restart_warns_once_then_batches_flow_again(
    nats_server: NatsProcess, caplog: pytest.LogCaptureFixture
) -> None:
    if not nats_server.running:
        nats_server.start()
    caplog.set_level(logging.INFO, logger=LOGGER)
    conn = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.05)
    backend = Backend()
    publisher = UsagePublisher(conn, backend.usage, group_of, "pub5", interval=0.02)
    publisher.start()
    try:
        nats_server.stop()
        calls = backend.calls  # several rounds while NATS is away
        await poll_until(lambda: backend.calls >= calls + 5, "sampling while NATS is down", DEADLINE)
        nats_server.start()
        # the restarted server may refuse for a moment while it recovers JetStream: retry to connect
        sub = (await connect(nats_server.url, name="usage-test", wait_seconds=10)).client
        try:
            received = await subscribe(sub, "pub5")
            _, batch = await next_batch(received, "web")
            assert batch.samples[0].task_id == "web.1"
            # the batch can arrive while the publisher still waits for its flush: wait for its word
            await poll_until(
                lambda: any("NATS works again" in r.getMessage() for r in caplog.records if r.name == LOGGER),
                "the publisher says NATS works again",
                DEADLINE,
            )
        finally:
            await sub.close()
    finally:
        await publisher.stop()
        await conn.close()
        if not nats_server.running:
            nats_server.start()
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "NATS" in warnings[0].getMessage()
    assert any("NATS works again" in r.getMessage() for r in caplog.records if r.name == LOGGER)
