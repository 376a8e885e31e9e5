"""The scheduler core: one cluster's desired groups against its actual tasks, round after round.

A round: read the backend's capacity, ``decide`` (pure, see ``domain/reconcile.py``), **append** the
decision's events, wait until the fold has them, and only then kill and launch. A kill stored earlier
whose task has not ended is sent again (``domain/kills.py``): a round that failed after its events
were stored, a scheduler killed before it acted, or a new holder of the lease, still carries it out.

Because a launch is stored before the backend hears of it, a scheduler killed at any point leaves no
task the log does not know: after a restart the projection holds every launched task, the backend
re-adopts (local) or reconciles (Mesos) them, and a task that never started is answered LOST and
replaced. Nothing is launched twice for one slot, because a launched task fills its slot from its
``TaskLaunched`` on.

Status updates come from the backend through :meth:`Scheduler.on_status`, which returns once the
update is stored (the Mesos backend acknowledges only then). Health checks run here for the local
backend (Mesos runs them on its agents and reports ``healthy`` with the status).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from typing import Any

from libs.errors import BayError, NotFound
from libs.eventlog import Projection
from libs.events import EventMeta
from libs.views import Cause
from services.scheduler.adapters.appender import Appender
from services.scheduler.adapters.healthcheck import CheckTarget, HealthChecker
from services.scheduler.domain import health, kills, reconcile
from services.scheduler.domain import tasks as t
from services.scheduler.domain.counts import Counts, count
from services.scheduler.domain.state import SchedulerState
from services.scheduler.domain.storing import worth_storing
from services.scheduler.portenv import port_env
from services.scheduler.ports import ClusterBackend, Host, TaskState, TaskStatus
from services.scheduler.service_layer.writer import EventWriter

log = logging.getLogger("bay.scheduler")

STRAGGLER_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class SchedulerConfig:
    cluster: str
    kill_grace_seconds: float = 5.0
    launch_limit: int = reconcile.DEFAULT_LAUNCH_LIMIT
    tick_seconds: float = 1.0  # a round at least this often (backoff expiry, offers, missed wake-ups)
    launch_timeout_seconds: float = 120.0  # STAGING longer than this: ask the backend about the task
    reconcile_interval_seconds: float = 300.0
    kill_retry_seconds: float = kills.RETRY_SECONDS  # a kill whose task has not ended is sent again
    refuse_seconds: float = 5.0  # Mesos: decline filter while something is pending
    idle_refuse_seconds: float = 60.0  # ... and while nothing is
    drain_seconds: float = 0.0  # a serving task asked to go leaves DNS, then is killed this much later
    health_start_interval_seconds: float = 0.25  # checks until a task's first pass (HealthChecker)


class Scheduler:
    def __init__(
        self,
        config: SchedulerConfig,
        backend: ClusterBackend,
        projection: Projection[SchedulerState],
        appender: Appender,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.cluster = config.cluster
        self.backend = backend
        self.projection = projection
        self.appender = appender
        self.clock = clock
        self.writer = EventWriter(self.cluster, lambda: self.projection.state)
        self._wake = asyncio.Event()
        self._drain_wake = 0.0  # the next end of a drain: a round then sends its kill
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.health = HealthChecker(self._on_check, start_interval=config.health_start_interval_seconds)
        self._last_reconcile = 0.0
        self._last_straggler_check = 0.0
        self._kills_sent: dict[str, float] = {}  # task -> when this process last asked the backend
        self.rounds = 0
        self.on_round: Callable[[reconcile.Decision, float], None] | None = None  # (decision, seconds)

    @property
    def state(self) -> SchedulerState:
        return self.projection.state

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """The projection must be current. Connects the backend, re-adopts or reconciles, then runs."""
        self.state.listen(self._changed)
        await self.backend.start(self.on_status)
        known = [tid for tid, task in self.state.tasks.items() if not task.terminal]
        if known:
            await self.backend.reconcile(known)
        self._last_reconcile = self.clock()
        for task in list(self.state.tasks.values()):
            if task.state == TaskState.RUNNING:
                self._watch_health(task)
        self._loop_task = asyncio.create_task(self._run(), name=f"scheduler-{self.cluster}")

    async def stop(self) -> None:
        await self.stop_rounds()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        await self.health.close()
        await self.backend.stop()

    async def end_tasks(self) -> int:
        """End every task of the cluster, as ``bay up`` does when it stops (not when a scheduler
        restarts alone): each kill is stored first, as an operator's, then carried out within the
        kill grace. Call with the rounds stopped (:meth:`stop_rounds`). The number of tasks."""
        live = [task for task in self.state.tasks.values() if not task.terminal]
        requests = [
            t.TaskKillRequested(task.id, "shutdown", self.clock()) for task in live if not task.kill_reason
        ]
        try:
            await self.store(requests, meta=EventMeta.command("bay-up"))
        except BayError as exc:  # the kills go ahead; a restarted scheduler learns how they ended
            log.warning("could not store the shutdown kills (%s); killing anyway", exc)
        for task in live:
            self.health.unwatch(task.id)
        await self.backend.end_tasks([task.id for task in live], self.config.kill_grace_seconds)
        return len(live)

    async def stop_rounds(self) -> None:
        """No more rounds (nothing launched, nothing replaced) while status updates are still stored."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)

    def wake(self) -> None:
        """Run a round soon (the backend calls this when offers arrive)."""
        self._wake.set()

    def _changed(self, group: str | None, decisive: bool) -> None:
        if decisive:
            self._wake.set()
        targets = self._watchers.values() if group is None else [self._watchers.get(group, ())]
        for events in targets:
            for ev in events:
                ev.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    # ---- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_wait())
            self._wake.clear()
            try:
                began = time.perf_counter()
                decision = await self.round()
                if self.on_round is not None:
                    self.on_round(decision, time.perf_counter() - began)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("scheduling round failed (%s); next round shortly", exc)
                await asyncio.sleep(0.5)

    def _next_wait(self) -> float:
        now = self.clock()
        wait = self.config.tick_seconds
        if self._drain_wake:
            if self._drain_wake > now:
                wait = min(wait, self._drain_wake - now + 0.001)
            self._drain_wake = 0.0
        for b in self.state.backoff.values():
            if b.next_attempt_at > now:
                wait = min(wait, b.next_attempt_at - now + 0.001)
        return max(0.0, wait)

    async def round(self) -> reconcile.Decision:
        """One pass: decide, store, then act."""
        self.rounds += 1
        state = self.state
        hosts = await self.backend.capacity()
        now = self.clock()
        desired = state.desired()
        decision = reconcile.decide(
            desired,
            state.tasks.values(),
            hosts,
            state.backoff,
            now,
            launch_limit=self.config.launch_limit,
            seed=random.getrandbits(64),
            drain_seconds=self.config.drain_seconds,
        )
        self._send_owed_kills(decision.owed, now)  # stored already: sent even if this round fails
        events = worth_storing(decision, state.pending, len(hosts), self.backend.offer_based, now)
        await self.store(self._completed(events))
        for kill in decision.kills:
            if kill.drain_until <= now:
                self._send_kill(kill.task_id, now)
            else:  # drained first: sent by a later round (``owed`` once the drain is over)
                self._drain_wake = min(self._drain_wake or kill.drain_until, kill.drain_until)
        if decision.draining_until:
            self._drain_wake = min(self._drain_wake or decision.draining_until, decision.draining_until)
        if decision.launches:
            await self.backend.launch(list(decision.launches))
        await self._offers(hosts, decision)
        await self._chase_stragglers(now)
        return decision

    async def _offers(self, hosts: list[Host], decision: reconcile.Decision) -> None:
        if not self.backend.offer_based:
            return
        pending = not decision.idle  # launching, killing or waiting: more offers may be needed
        used = {launch.offer_id for launch in decision.launches}
        unused = [h.offer_id for h in hosts if h.offer_id and h.offer_id not in used]
        if unused:
            refuse = self.config.refuse_seconds if pending else self.config.idle_refuse_seconds
            await self.backend.decline(unused, refuse)
        await self.backend.want_offers(pending)

    async def _chase_stragglers(self, now: float) -> None:
        """Ask about tasks stuck in STAGING (a launch the backend never took) and, now and then,
        about every task, so that a missed update cannot leave a task wrong for ever."""
        if now - self._last_straggler_check < STRAGGLER_CHECK_SECONDS:
            return
        self._last_straggler_check = now
        if now - self._last_reconcile >= self.config.reconcile_interval_seconds:
            self._last_reconcile = now
            await self.backend.reconcile([])
            return
        limit = now - self.config.launch_timeout_seconds
        stuck = [
            task.id
            for task in self.state.tasks.values()
            if task.state == TaskState.STAGING and task.launched_at < limit
        ]
        if stuck:
            log.warning("%d task(s) launched over %.0fs ago never started; reconciling", len(stuck),
                        self.config.launch_timeout_seconds)  # fmt: skip
            await self.backend.reconcile(stuck)

    def _send_kill(self, task_id: str, now: float) -> None:
        """Ask the backend to kill a task whose kill is stored."""
        again = task_id in self._kills_sent
        self._kills_sent[task_id] = now
        self.health.unwatch(task_id)
        self._spawn(self._kill(task_id, again=again))

    def _send_owed_kills(self, owed: tuple[str, ...], now: float) -> None:
        if self._kills_sent:  # forget the tasks that have ended
            keep = set(owed)
            self._kills_sent = {k: v for k, v in self._kills_sent.items() if k in keep}
        due = kills.due(owed, self._kills_sent, now, self.config.kill_retry_seconds)
        fresh = sum(1 for task_id in due if task_id not in self._kills_sent)
        if fresh:
            log.info("%d task(s) with a kill on the log have not ended: sending their kill", fresh)
        for task_id in due:
            self._send_kill(task_id, now)

    async def _kill(self, task_id: str, *, again: bool = False) -> None:
        try:
            await self.backend.kill(task_id, self.config.kill_grace_seconds)
            if again:  # the task outlived a kill: the backend may know an end the log missed
                await self.backend.reconcile([task_id])
        except NotFound:
            await self.backend.reconcile([task_id])
        except Exception:
            log.exception("killing %s failed; sent again in %.0fs", task_id, self.config.kill_retry_seconds)

    # ---- storing events --------------------------------------------------------------------------

    def _completed(self, events: list[t.SchedulerEvent]) -> list[t.SchedulerEvent]:
        """Launches with what readers need of them: the cluster, where the task is reached (the
        backend's address of its host) and the group's service name."""
        out: list[t.SchedulerEvent] = []
        for e in events:
            if isinstance(e, t.TaskLaunched):
                g = self.state.groups.get(e.group)
                e = replace(
                    e,
                    cluster=self.cluster,
                    host_address=self.backend.host_address(e.host_id, e.hostname),
                    service=g.service if g else e.group,
                )
            out.append(e)
        return out

    async def store(
        self, events: Iterable[t.SchedulerEvent], *, meta: EventMeta | None = None, cause: Cause | None = None
    ) -> int:
        """Append events and wait until the fold has them; the last sequence (0: none)."""
        items = self.writer.prepare(events, meta=meta, cause=cause)
        if not items:
            return 0
        try:
            seqs = await self.appender.append_all([(i.subject, i.envelope, i.headers) for i in items])
        except BayError:
            self.writer.failed(items)
            raise
        last = max(seqs)
        await self.projection.wait_for(last, timeout=30.0)
        self.writer.stored(items)
        return last

    # ---- what the backend reports ----------------------------------------------------------------

    async def on_status(self, status: TaskStatus) -> None:
        """A backend status update: stored (if it says something new) before this returns."""
        task = self.state.tasks.get(status.task_id)
        if task is None:
            if not status.state.terminal:
                log.warning("task %s is not in the event log; killing it", status.task_id)
                self._spawn(self._kill(status.task_id))
            return
        if task.terminal and not status.state.terminal:
            # e.g. answered LOST while a crash hid it: the log's word stands, the process goes
            log.warning("task %s has ended in the event log but still runs; killing it", task.id)
            self._spawn(self._kill(status.task_id))
            return
        if task.terminal or (
            status.state == task.state
            and (status.healthy is None or status.healthy == task.healthy)
            and (status.state != TaskState.RUNNING or task.started_at is not None)
        ):
            return  # nothing new (a reconciliation answer, a repeated update)
        now = status.timestamp or self.clock()
        changed = t.TaskStatusChanged(
            task.id, status.state, now, status.reason, status.message, status.exit_code, status.healthy
        )
        if status.state.terminal:
            self.health.unwatch(task.id)
            ended = t.apply(task, changed)
            backoff = reconcile.backoff_events(self.state.desired(), self.state.backoff, task, ended, now)
            if backoff is not None:
                # stored first: a round that sees the task ended must also see the delay it causes
                # (so it names the task's last event before the failure as its cause)
                await self.store([backoff], cause=task.cause)
        await self.store([changed])
        if status.state == TaskState.RUNNING:
            current = self.state.tasks.get(task.id)
            if current is not None:
                self._watch_health(current)

    def _watch_health(self, task: t.Task) -> None:
        if self.backend.checks_health or task.kill_reason:
            return
        g = self.state.group(task.group)
        check = g.spec_of(task.group_version).health_check if g is not None else None  # its version's
        if check is None:
            return
        where = self.backend.command_context(task.id)
        self.health.watch(
            CheckTarget(
                task_id=task.id,
                check=health.spec_of(check),
                host=task.host_address or task.hostname,
                ports=dict(task.ports),
                env=_check_env(task, task.host_address),
                cwd=where.cwd if where else None,
                run_as=where.run_as if where else (),
            )
        )

    async def _on_check(self, task_id: str, ok: bool, message: str) -> None:
        task = self.state.tasks.get(task_id)
        if task is None or task.terminal or task.kill_reason:
            self.health.unwatch(task_id)
            return
        g = self.state.group(task.group)
        check = g.spec_of(task.group_version).health_check if g is not None else None
        if check is None:
            self.health.unwatch(task_id)
            return
        event = health.observe(task, check, ok, self.clock(), message)
        if event is not None:
            await self.store([event])

    # ---- operator actions and queries ------------------------------------------------------------

    async def kill_task(
        self, task_id: str, reason: str = "operator", meta: EventMeta | None = None
    ) -> t.Task:
        """An operator's kill: the first event of the operator's chain (``meta``)."""
        task = self.state.tasks.get(task_id)
        if task is None:
            raise NotFound(f"no task {task_id!r} in cluster {self.cluster}")
        if task.terminal:
            return task
        if not task.kill_reason:
            kill = t.TaskKillRequested(task_id, reason or "operator", self.clock())
            await self.store([kill], meta=meta or EventMeta.command("operator"))
        self._send_kill(task_id, self.clock())  # asked again: sent again, whatever was sent before
        return self.state.tasks[task_id]

    def counts(self, group: str) -> Counts:
        """The group's tasks by state."""
        g = self.state.group(group)
        targets = [t for t in g.targets if t.spec.cluster == self.cluster] if g is not None else []
        return count(g, self.state.group_tasks(group), targets)

    def watch_group(self, group: str) -> asyncio.Event:
        ev = asyncio.Event()
        self._watchers.setdefault(group, set()).add(ev)
        return ev

    def unwatch_group(self, group: str, ev: asyncio.Event) -> None:
        events = self._watchers.get(group)
        if events is not None:
            events.discard(ev)
            if not events:
                del self._watchers[group]


def _check_env(task: t.Task, address: str) -> dict[str, str]:
    """What a command health check sees: the task's ports and host, as the task itself does."""
    return {"HOST": address or task.hostname, **port_env(task.ports)}
