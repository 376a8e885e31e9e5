"""The loop's wake-ups from zero, over an in-memory log and the in-memory WakePort: with a tick of
30 s, a group at 0 with a backlog metric is watched, evaluated at once when woken, and scales in
that evaluation; its watch stops when it leaves 0 and when its policy goes; a backlog that cannot
be read is not watched and status says why."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace

import nats.js.errors
import pytest_asyncio
from bay.v1 import autoscale_pb2

from libs.eventlog.memory import MemoryEventLog
from libs.events import EventMeta
from libs.events import model as m
from libs.samples.pushed import PushedMetrics
from libs.samples.usage import UsageWindow
from libs.spec import GroupSpec
from services.autoscaler.adapters.observe import Observer
from services.autoscaler.bootstrap import bootstrap
from services.autoscaler.ports import MemoryWakes, Watch
from services.autoscaler.service_layer.autoscaler import Autoscaler
from tests.poll import poll_until
from tests.unit.autoscaler.test_service_replay import Registry, _versions, append_group

DEADLINE = 5.0  # against a tick of 30 s: only a wake-up gets there


class Queue:
    """nats-py's JetStream context as read_backlog uses it: one consumer's info."""

    def __init__(self) -> None:
        self.pending = 0
        self.gone = False

    async def consumer_info(self, stream: str, consumer: str, timeout: float | None = None) -> object:
        if self.gone:
            raise nats.js.errors.NotFoundError(code=404, err_code=10059, description="stream not found")
        return SimpleNamespace(num_pending=self.pending, num_ack_pending=0)


def _policy() -> autoscale_pb2.AutoscalePolicy:
    backlog = autoscale_pb2.BacklogSource(stream="JOBS", consumer="workers")
    return autoscale_pb2.AutoscalePolicy(
        group="web",
        min=0,
        max=10,
        metrics=[autoscale_pb2.MetricTarget(kind="backlog", target=2, activation=3, backlog=backlog)],
    )


@dataclass
class Loop:
    autoscaler: Autoscaler
    registry: Registry
    wakes: MemoryWakes
    queue: Queue


@pytest_asyncio.fixture
async def loop() -> AsyncIterator[Loop]:
    _versions.clear()
    log = MemoryEventLog()
    await append_group(log, m.GroupCreated(GroupSpec(name="web", cmd="sleep 1", instances=0), 1))
    registry, wakes, queue = Registry(log), MemoryWakes(), Queue()
    registry.count = 0
    observer = Observer(UsageWindow(), PushedMetrics(), js=queue)
    autoscaler = await bootstrap(log, registry, observer, tick_seconds=30, wakes=wakes)
    stop = asyncio.Event()
    running = asyncio.create_task(autoscaler.run(stop))
    try:
        yield Loop(autoscaler, registry, wakes, queue)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, DEADLINE)
        await autoscaler.projection.stop(snapshot=False)


WATCH = Watch("web", "JOBS", "workers")


async def test_a_woken_group_at_zero_is_evaluated_at_once_and_its_watch_stops_above_zero(loop: Loop) -> None:
    a = loop.autoscaler
    await a.set_policy(_policy(), EventMeta.command("ops"))
    assert loop.wakes.watched == {WATCH}  # set at zero: watched at once, not at the next tick

    loop.queue.pending = 2  # below the activation threshold: evaluated, held
    assert loop.wakes.wake("web")
    await poll_until(lambda: _value(a) == 2, "the woken evaluation", DEADLINE)
    assert a.now["web"].reason == "below activation" and loop.registry.calls == []

    loop.queue.pending = 7  # 7 at 2 per task: 4, from zero in the woken evaluation
    loop.wakes.wake("web")
    await poll_until(lambda: loop.registry.calls, "a scale from zero", DEADLINE)
    assert [n for n, _ in loop.registry.calls] == [4]
    assert a.view.scaled["web"].decisions[-1][1].rule == "activation"
    await poll_until(lambda: not loop.wakes.watched, "no watch above zero", DEADLINE)
    assert not loop.wakes.wake("web")


async def test_a_removed_policy_or_an_unreadable_backlog_is_not_watched(loop: Loop) -> None:
    a = loop.autoscaler
    await a.set_policy(_policy(), EventMeta.command("ops"))
    assert loop.wakes.watched == {WATCH}
    loop.queue.gone = True
    loop.wakes.wake("web")
    await poll_until(lambda: not loop.wakes.watched, "no watch of a stream that is gone", DEADLINE)
    assert a.now["web"].reason.endswith("backlog: JOBS/workers: stream not found"), a.now["web"].reason
    assert "no data for backlog" in a.now["web"].reason and loop.registry.calls == []

    loop.queue.gone = False  # the next tick reads it again, and it is watched again
    await a.tick("web")
    await a.watch()
    assert loop.wakes.watched == {WATCH}
    assert await a.remove_policy("web", EventMeta.command("ops"))
    assert loop.wakes.watched == frozenset()


def _value(a: Autoscaler) -> float | None:
    now = a.now.get("web")
    if now is None or now.latest is None:
        return None
    return now.latest.metrics[0].value
