"""A JetStream backlog scales a worker group as the real autoscaler process sees it, with the real
registry and scheduler: from 0 (KEDA's activation threshold) to N = ceil(backlog / target), back to
0 once the test, acting as the workers, has fetched and acknowledged everything and the down window
has passed; a group at 0 is woken by the first message its stream stores, not by the next tick
(the figures: with and without the wake-up, in the run's summary); a backlog on a stream that is
not there is a reason in status, not a crash."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from bay.v1 import autoscale_pb2
from nats.js.api import AckPolicy, ConsumerConfig

from tests.integration.autoscaler.harness import DEADLINE, Platform, at, platform
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group
from tests.poll import poll_until

# active at 7 jobs, all of them in the backlog then: the scale from 0 is one decision, whatever the
# order of the wake-ups and the publishes
TARGET, ACTIVATION, DOWN_WINDOW = 2.0, 7.0, 2.0
WOKEN_WITHIN = 5.0  # seconds: generous on a loaded machine, and far below a tick of 30 s


@dataclass
class Jobs:
    """A work stream of the test's own, with a durable pull consumer per worker group."""

    js: Any
    stream: str
    tag: str

    def subject(self, consumer: str) -> str:
        return f"asjobs.{self.tag}.{consumer}"

    async def add(self, consumer: str) -> None:
        config = ConsumerConfig(
            durable_name=consumer, ack_policy=AckPolicy.EXPLICIT, filter_subject=self.subject(consumer)
        )
        await self.js.add_consumer(self.stream, config)

    async def publish(self, consumer: str, n: int) -> float:
        """``n`` jobs; the time just before the last one (the one that activates the backlog,
        from which the figures count)."""
        last = 0.0
        for i in range(n):
            last = time.time()
            await self.js.publish(self.subject(consumer), b"job %d" % i)
        return last

    async def consumers(self) -> set[str]:
        return {c.name for c in await self.js.consumers_info(self.stream)}

    async def work_off(self, consumer: str, n: int) -> None:
        """What the workers do: fetch every job and acknowledge it."""
        sub = await self.js.pull_subscribe_bind(consumer, stream=self.stream)
        done = 0
        while done < n:
            for msg in await sub.fetch(n - done, timeout=DEADLINE):
                await msg.ack_sync()
                done += 1
        await sub.unsubscribe()


@pytest_asyncio.fixture
async def setup(registry: RunningRegistry, fresh_stream: str, tmp_path: Path) -> AsyncIterator[Platform]:
    async with platform(registry, fresh_stream, tmp_path) as p:
        yield p


async def jobs_of(p: Platform) -> Jobs:
    tag = uuid.uuid4().hex[:8]
    jobs = Jobs(p.conn.client.jetstream(), f"AS_JOBS_{tag}", tag)
    await jobs.js.add_stream(name=jobs.stream, subjects=[f"asjobs.{tag}.>"])
    return jobs


def _policy(
    group: str, stream: str, consumer: str, activation: float = ACTIVATION
) -> autoscale_pb2.AutoscalePolicy:
    return autoscale_pb2.AutoscalePolicy(
        group=group,
        min=0,
        max=5,
        metrics=[
            autoscale_pb2.MetricTarget(
                kind="backlog",
                target=TARGET,
                activation=activation,
                backlog=autoscale_pb2.BacklogSource(stream=stream, consumer=consumer),
            )
        ],
        up=autoscale_pb2.UpBehaviour(window_seconds=1, stable_window_seconds=1),
        down=autoscale_pb2.DownBehaviour(window_seconds=DOWN_WINDOW, cooldown_seconds=0, max_percent=100),
    )


async def test_a_backlog_takes_a_worker_group_from_zero_to_n_and_back_to_zero(
    setup: Platform, registry: RunningRegistry, record_property: Any
) -> None:
    p, a = setup, setup.autoscaler
    jobs = await jobs_of(p)
    try:
        await jobs.add("workers")
        await create_group(registry, name="work", cmd="sleep 1000", instances=0)
        await create_group(registry, name="lost", cmd="sleep 1000", instances=0)
        await a.client.set_policy(_policy("work", jobs.stream, "workers"))
        await a.client.set_policy(_policy("lost", "AS_NO_SUCH_STREAM", "workers"))
        await poll_until(lambda: _has_wake(jobs), "the wake's consumer on the work stream", DEADLINE)

        # 2 jobs: under the activation threshold, evaluated at once, and the group stays at 0
        sent = await jobs.publish("workers", 2)
        s = await poll_until(lambda: _valued(a, "work", 2, sent), "an evaluation of 2 jobs", DEADLINE)
        assert s.reason == "below activation" and p.view.steps("work") == []

        # 5 more: 7 at 2 per task, 4 workers, in one decision from 0
        sent = await jobs.publish("workers", 5)
        await poll_until(lambda: p.view.instances("work") == 4, "scaled from 0 to 4", DEADLINE)
        first = p.view.decisions("work")[0]
        assert (getattr(first, "from"), first.to, first.rule) == (0, math.ceil(7 / TARGET), "activation")
        record_property(
            "figure", f"activating message -> 0->4 decision, wake, tick 1 s: {at(first) - sent:.3f} s"
        )
        await poll_until(lambda: _has_wake(jobs, False), "no wake above 0", DEADLINE)

        # the workers take every job: 0 after the down window, and watched again at 0
        await jobs.work_off("workers", 7)
        await poll_until(lambda: p.view.instances("work") == 0, "back to 0", DEADLINE)
        assert p.view.steps("work") == [(0, 4), (4, 0)] and p.view.changes["work"] == [(0, 4), (4, 0)]
        down = p.view.decisions("work")[1]
        high = p.view.last_high("work", 4)
        assert down.rule == "scale to zero" and high is not None and at(down) >= high + DOWN_WINDOW
        await poll_until(lambda: _has_wake(jobs), "watched again at 0", DEADLINE)

        lost = await a.status("lost")
        assert "AS_NO_SUCH_STREAM/workers: stream not found" in lost.reason, lost.reason
        assert p.view.steps("lost") == [] and a.proc is not None and a.proc.poll() is None
    finally:
        await jobs.js.delete_stream(jobs.stream)


@pytest.mark.timeout(90)
async def test_a_group_at_zero_scales_at_its_first_message_not_at_the_next_tick(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path, record_property: Any
) -> None:
    env = {"BAY_AUTOSCALER_TICK_SECONDS": "30"}
    async with platform(registry, fresh_stream, tmp_path, env=env) as p:
        a = p.autoscaler
        jobs = await jobs_of(p)
        try:
            for group in ("woken", "polled"):
                await jobs.add(group)
                await create_group(registry, name=group, cmd="sleep 1000", instances=0)
            await a.client.set_policy(_policy("woken", jobs.stream, "woken", activation=0))
            await poll_until(lambda: _has_wake(jobs), "the wake's consumer", DEADLINE)

            sent = await jobs.publish("woken", 1)
            await poll_until(lambda: p.view.steps("woken"), "a decision within seconds", WOKEN_WITHIN)
            woken = p.view.decisions("woken")[0]
            assert (getattr(woken, "from"), woken.to, woken.rule) == (0, 1, "activation")
            record_property(
                "figure", f"first message -> 0->1 decision, wake, tick 30 s: {at(woken) - sent:.3f} s"
            )

            # the same without the wake-up, at a tick of 1 s: the decision waits for a tick
            a.stop()
            a.env = {"BAY_AUTOSCALER_TICK_SECONDS": "1", "BAY_AUTOSCALER_BACKLOG_WAKE": "false"}
            await a.restart()
            await a.client.set_policy(_policy("polled", jobs.stream, "polled", activation=0))
            since = time.time()
            await poll_until(lambda: a.evaluated_after("polled", since), "evaluated at 0", DEADLINE)
            assert await jobs.consumers() == {"woken", "polled"}  # no wake, no consumer of its own
            sent = await jobs.publish("polled", 1)
            await poll_until(lambda: p.view.steps("polled"), "a decision at a tick", DEADLINE)
            polled = p.view.decisions("polled")[0]
            record_property(
                "figure", f"first message -> 0->1 decision, no wake, tick 1 s: {at(polled) - sent:.3f} s"
            )
        finally:
            await jobs.js.delete_stream(jobs.stream)


async def _has_wake(jobs: Jobs, present: bool = True) -> bool:
    """Whether the stream has a consumer besides the workers' (the autoscaler's wake)."""
    theirs = {c for c in await jobs.consumers() if not c.startswith(("workers", "woken", "polled"))}
    return bool(theirs) == present


async def _valued(a: Any, group: str, value: float, after: float) -> autoscale_pb2.AutoscaleStatus | None:
    s = await a.evaluated_after(group, after)
    if s is None or s.latest.metrics[0].value != value:
        return None
    return s
