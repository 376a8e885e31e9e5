"""The usage window fed by real UsageBatch publishes on the session's nats-server."""

from __future__ import annotations

import pytest
from bay.v1.scheduler_pb2 import UsageBatch, UsageSample
from nats.aio.client import Client

from libs.events import subjects
from libs.samples.usage import UsageWindow
from tests.poll import poll_until

DEADLINE = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def batch(group: str, *samples: tuple[str, float, float, int, int]) -> UsageBatch:
    return UsageBatch(
        cluster="local",
        group=group,
        samples=[
            UsageSample(
                task_id=t, cpu_fraction=cpu, cpus_limit=limit, mem_bytes=mem, mem_limit_bytes=mem_limit
            )
            for t, cpu, limit, mem, mem_limit in samples
        ],
    )


async def publish(nc: Client, window: UsageWindow, subject: str, data: bytes, *, counted: int) -> None:
    """Publish, then wait until the window has taken in ``counted`` batches in all."""
    await nc.publish(subject, data)
    await poll_until(lambda: window.received >= counted, f"{counted} batches received", DEADLINE)


async def test_window_averages_each_tasks_samples_by_arrival(nc: Client) -> None:
    clock = Clock()
    window = UsageWindow(clock=clock, keep_seconds=60.0)
    sub = await window.subscribe(nc)
    try:
        subject = subjects.usage("local", "web")
        # t=1000: web.a at 0.2 of its 0.5 cpus (0.4), 16 of 64 MiB; web.b without limits
        b1 = batch("web", ("web.a", 0.2, 0.5, 16 << 20, 64 << 20), ("web.b", 0.3, 0.0, 5, 0))
        await publish(nc, window, subject, b1.SerializeToString(), counted=1)
        clock.now = 1010.0
        b2 = batch("web", ("web.a", 0.4, 0.5, 48 << 20, 64 << 20))
        await publish(nc, window, subject, b2.SerializeToString(), counted=2)

        assert window.cpu("web", since=1000.0) == pytest.approx({"web.a": 0.6, "web.b": 0.3})
        assert window.mem("web", since=1000.0) == pytest.approx({"web.a": 0.5})  # web.b: no limit
        assert window.cpu("web", since=1005.0) == pytest.approx({"web.a": 0.8})
        assert window.cpu("web", since=1000.0, task_ids={"web.b"}) == pytest.approx({"web.b": 0.3})
        assert window.cpu("web", since=1011.0) == {}  # missing, not 0
        assert window.cpu("api", since=0.0) == {}
        assert window.last_arrival("web") == 1010.0

        # older than keep_seconds: forgotten when read
        clock.now = 1065.0
        assert window.cpu("web", since=0.0) == pytest.approx({"web.a": 0.8})
    finally:
        await sub.unsubscribe()


async def test_bad_payloads_and_mismatched_subjects_are_dropped(nc: Client) -> None:
    clock = Clock()
    window = UsageWindow(clock=clock)
    sub = await window.subscribe(nc)
    try:
        await nc.publish(subjects.usage("local", "web"), b"\xff\xff not a protobuf")
        # a batch whose group is not its subject's: not web's, not api's
        await nc.publish(
            subjects.usage("local", "web"), batch("api", ("api.a", 1.0, 1.0, 1, 2)).SerializeToString()
        )
        nan = batch("web", ("web.n", float("nan"), 1.0, 1, 2), ("web.i", float("inf"), 0.0, 0, 0))
        good = batch("web", ("web.a", 0.5, 1.0, 1, 4))
        await nc.publish(subjects.usage("local", "web"), nan.SerializeToString())
        await publish(nc, window, subjects.usage("local", "web"), good.SerializeToString(), counted=2)
        assert window.cpu("web", since=0.0) == {"web.a": 0.5}
        assert window.mem("web", since=0.0) == {"web.a": 0.25, "web.n": 0.5}  # its cpu was NaN
        assert window.cpu("api", since=0.0) == {}
    finally:
        await sub.unsubscribe()
