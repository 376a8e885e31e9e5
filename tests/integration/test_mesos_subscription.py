"""The Mesos backend's subscription on its own (real pymesos, the master simulator over HTTP), with
hooks that record what the rest of the backend would hear; and the kills and reconciliations kept
while there was no subscription, sent once there is one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.scheduler.backends.mesos.calls import MasterCalls
from services.scheduler.backends.mesos.config import MesosBackendConfig
from services.scheduler.backends.mesos.jobs import Jobs
from services.scheduler.backends.mesos.reconcile import Reconciler
from services.scheduler.backends.mesos.subscription import Hooks, Subscription
from services.scheduler.backends.mesos.tasks import TaskTable
from tests.mesos_sim import MesosMasterSim, SimConfig

DEADLINE = 10.0


@dataclass
class Heard:
    """What the subscription told the other parts; :meth:`until` waits for it, with a deadline."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    batches: int = 0
    voids: int = 0
    resubscribed: list[bool] = field(default_factory=list)
    framework_ids: list[str] = field(default_factory=list)
    after_subscribe: Callable[[bool], Any] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def hooks(self) -> Hooks:
        def route(kind: str, payload: Any) -> None:
            self.events.append((kind, payload))
            self._notify()

        def batch_done() -> None:
            self.batches += 1

        def offers_void() -> None:
            self.voids += 1

        async def resubscribed(new_framework: bool) -> None:
            if self.after_subscribe is not None:
                await self.after_subscribe(new_framework)
            self.resubscribed.append(new_framework)
            self._notify()

        return Hooks(route, batch_done, offers_void, resubscribed)

    async def stored(self, framework_id: str) -> None:
        self.framework_ids.append(framework_id)

    def updates(self) -> list[tuple[str, str]]:
        return [(p["task_id"]["value"], p["state"]) for kind, p in self.events if kind == "update"]

    async def until(self, predicate: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(wait(), DEADLINE)


@dataclass
class Subscribed:
    subscription: Subscription
    calls: MasterCalls
    jobs: Jobs
    heard: Heard

    async def close(self) -> None:
        self.subscription.halt()
        await self.jobs.cancel()
        await self.calls.close()
        await self.subscription.close()


def subscription(
    sim: MesosMasterSim, heard: Heard, calls: MasterCalls | None = None, **config: Any
) -> Subscribed:
    settings = MesosBackendConfig(master=sim.address, cluster="test", **config)
    calls, jobs = calls or MasterCalls(), Jobs()
    return Subscribed(Subscription(settings, calls, jobs, heard.hooks(), heard.stored), calls, jobs, heard)


@pytest.fixture
async def sim() -> AsyncIterator[MesosMasterSim]:
    s = MesosMasterSim(agents=2, config=SimConfig(update_retry_seconds=0.2))
    await s.start()
    yield s
    await s.stop()


async def test_events_go_on_in_order_and_a_lost_subscription_comes_back(sim: MesosMasterSim) -> None:
    sub = subscription(sim, heard := Heard())
    try:
        await sub.subscription.start()
        fid = sim.framework().framework_id
        assert (
            sub.calls.is_subscribed and heard.framework_ids == [fid] and sub.subscription.framework_id == fid
        )
        await heard.until(
            lambda: len(heard.resubscribed) == 1 and any(k == "offers" for k, _ in heard.events)
        )
        assert heard.resubscribed == [False] and heard.batches >= 1

        sim.drop_subscription()  # pymesos reconnects: the same framework
        await heard.until(lambda: len(heard.resubscribed) == 2)
        assert heard.resubscribed == [False, False] and heard.voids >= 1 and heard.framework_ids == [fid]
        assert sim.calls["SUBSCRIBE"] == 2

        sim.remove_framework(fid)  # gone for good: a new framework, and its id is stored
        await heard.until(lambda: len(heard.resubscribed) == 3)
        assert heard.resubscribed[-1] is True and len(heard.framework_ids) == 2
        assert heard.framework_ids[1] != fid and list(sim.frameworks) == [heard.framework_ids[1]]
    finally:
        await sub.close()


async def test_a_quiet_subscription_that_still_heartbeats_is_kept(sim: MesosMasterSim) -> None:
    sim.config.heartbeat_interval = 0.05
    sub = subscription(sim, Heard(), heartbeat_timeout=0.4)
    try:
        await sub.subscription.start()
        assert await sub.calls.send("SUPPRESS", {"roles": ["*"]})  # no offers: only heartbeats come
        beats = sim.heartbeats
        await sim.wait_until(lambda: sim.heartbeats >= beats + 30, timeout=DEADLINE)  # 1.5 s of quiet
        assert sim.calls["SUBSCRIBE"] == 1 and sub.calls.is_subscribed
    finally:
        await sub.close()


async def test_kept_kills_and_reconciliations_are_sent_once_subscribed(sim: MesosMasterSim) -> None:
    calls, tasks = MasterCalls(), TaskTable()
    reconciler = Reconciler(calls, tasks, Jobs())
    await reconciler.kill("web.a", 1.0)  # no subscription yet: kept
    await reconciler.kill("web.b", 1.0)
    await reconciler.reconcile(["web.c"])
    reconciler.ended("web.b")  # it ended some other way meanwhile: its kill is not needed any more
    assert sim.calls["KILL"] == sim.calls["RECONCILE"] == 0

    heard = Heard(after_subscribe=reconciler.resubscribed)
    sub = subscription(sim, heard, calls)
    try:
        await sub.subscription.start()
        # A kill of a task the master does not know is answered as a reconciliation: TASK_LOST.
        await heard.until(lambda: ("web.c", "TASK_LOST") in heard.updates())
        assert heard.updates() == [("web.a", "TASK_LOST"), ("web.c", "TASK_LOST")]
        await sim.wait_until(lambda: sim.calls["RECONCILE"] == 2, timeout=DEADLINE)  # then all (implicit)
        assert sim.calls["KILL"] == 1
    finally:
        await sub.close()
