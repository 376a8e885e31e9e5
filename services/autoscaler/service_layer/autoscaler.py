"""The autoscaler's service layer: policy commands (validate, append) and the loop that evaluates
every autoscaled group once a tick.

Each tick, per group with a policy:
1. no live group: nothing ("group <name> does not exist");
2. a deployment of the group runs (``libs.views.deployments``, not ended): no scaling, no
   evaluation ("deployment <id> running") — the deployer owns the count until it ends;
3. the last decision is in the log but not in the group's count (a crash, or a registry that did
   not answer, between the two): asked of the registry again, nothing decided anew;
4. otherwise the Observation (the group's instance count, its ready tasks by the shared readiness
   rule of ``libs.views``, the sources' samples) goes through ``domain.step``.
A decision that changes the count is appended as ``AutoscaleDecided``, then asked of the registry
(``ScaleGroup``, with the idempotency key ``autoscaler-<group>-<sequence of the decision>``, so the
repeat of 3 is the same command, answered once). Holds are not logged; the windows
are snapshotted as ``AutoscaleWindow`` when they changed, at most every ``snapshot_seconds``: the
log grows by a decision per change and a snapshot per ~15 s of an open window, and a restart
resumes from them. After a SIGKILL at most ``snapshot_seconds`` of hold recommendations are lost
(a stop asked for snapshots first): the window's highest and every count change with its cooldowns
are in the log, so a restart neither jumps nor flaps.

A group at zero with a backlog metric is also evaluated the moment its stream stores a message
(``WakePort``, adapters.wakers), not at the next tick: the watches are the groups at 0 instances with
a backlog metric, brought up to date after every round of evaluations and at every policy change
(a group that left 0, a removed policy: its watch stops). A backlog that cannot be read is not
watched until it can (status names the reason either way).

A manual ``bay scale`` of an autoscaled group: the autoscaler takes the new count as the current
one and continues from it; a count outside [min, max] is brought back inside at the next tick
(``domain.clamp``, rule "at min"/"at max").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bay.v1 import autoscale_pb2

from libs.errors import BayError, Conflict, NotFound, ValidationFailed
from libs.eventlog import EventLog, Projection
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from services.autoscaler.adapters.observe import Observer
from services.autoscaler.adapters.wire import decision_to_pb, resolved_pb, violations, window_to_pb
from services.autoscaler.domain import Decision, State, step
from services.autoscaler.ports import MemoryWakes, ScalePort, WakePort, Watch
from services.autoscaler.service_layer.view import AutoscalerView, Scaled

log = logging.getLogger("bay.autoscaler")

ACTOR = "autoscaler"


@dataclass
class Now:
    """What the loop saw of a group at its last tick (for Status)."""

    current: int = 0
    ready: int = 0
    latest: Decision | None = None
    reason: str = ""
    missing: dict[str, str] = field(default_factory=dict)  # metric key -> why it had no data


class Autoscaler:
    def __init__(
        self,
        event_log: EventLog,
        projection: Projection[AutoscalerView],
        registry: ScalePort,
        observer: Observer,
        *,
        clock: Callable[[], float] = time.time,
        tick_seconds: float = 1.0,
        snapshot_seconds: float = 15.0,
        wakes: WakePort | None = None,
    ) -> None:
        self.log = event_log
        self.projection = projection
        self.registry = registry
        self.observer = observer
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.snapshot_seconds = snapshot_seconds
        self.wakes = wakes if wakes is not None else MemoryWakes()
        self.now: dict[str, Now] = {}
        self._snapshotted: dict[str, State] = {}
        self._watching = asyncio.Lock()

    @property
    def view(self) -> AutoscalerView:
        return self.projection.state

    # ---- commands ----

    async def set_policy(self, p: autoscale_pb2.AutoscalePolicy, meta: EventMeta) -> tuple[Scaled, bool]:
        found = violations(p)
        if found:
            raise ValidationFailed(found)
        if meta.idempotency_key and (p.group, meta.idempotency_key) in self.view.keys:
            return self.view.scaled[p.group], True
        await self._append(p.group, m.AutoscalePolicySet(resolved_pb(p)), meta)
        await self.watch()
        return self.view.scaled[p.group], False

    async def remove_policy(self, group: str, meta: EventMeta) -> bool:
        if group not in self.view.scaled:
            return False
        await self._append(group, m.AutoscalePolicyRemoved(meta.actor), meta)
        self.now.pop(group, None)
        await self.watch()
        return True

    def scaled(self, group: str) -> Scaled:
        s = self.view.scaled.get(group)
        if s is None:
            raise NotFound(f"group {group!r} has no autoscaling policy")
        return s

    async def _append(self, group: str, event: m.AutoscaleEvent, meta: EventMeta) -> int:
        for attempt in range(3):
            v = self.view
            env = make_envelope(
                to_pb(event),
                aggregate_type=subjects.AUTOSCALE,
                aggregate_id=group,
                aggregate_version=v.aggregate_version.get(group, 0) + 1,
                meta=meta,
                now=self.clock(),
            )
            try:
                res = await self.log.append(
                    subjects.autoscale(group), env, expected_last_seq=v.last_sequence.get(group, 0)
                )
            except Conflict:
                if attempt == 2:
                    raise
                await self.projection.wait_for(await self.log.last_sequence(subjects.autoscale(group)))
                continue
            await self.projection.wait_for(res.sequence)
            return res.sequence
        raise AssertionError("unreachable")

    # ---- the loop ----

    async def run(self, stop: asyncio.Event) -> None:
        """Every group once a tick; a group woken from zero at once, between the ticks."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        woken: set[str] = set()
        try:
            while not stop.is_set():
                if loop.time() >= due:
                    due, woken = loop.time() + self.tick_seconds, set(self.view.scaled)
                for group in sorted(woken):
                    await self._evaluate(group)
                await self.watch()
                woken = await self.wakes.wait(stop, due - loop.time())
        finally:
            await self.wakes.aclose()  # no consumer of a wake left on anyone's stream
        for group, s in list(self.view.scaled.items()):  # a stop asked for: the windows exactly
            with contextlib.suppress(BayError):
                await self._snapshot(group, s)

    async def _evaluate(self, group: str) -> None:
        try:
            await self.tick(group)
        except BayError as exc:
            self.now.setdefault(group, Now()).reason = f"{exc.message}"
            log.warning("autoscaling %s: %s", group, exc.message)

    async def watch(self) -> None:
        """Bring the wake-ups up to date with the groups at zero (computed under the lock, so a
        policy change and the loop never apply a stale list over a newer one)."""
        async with self._watching:
            await self.wakes.watch(self._at_zero())

    def _at_zero(self) -> set[Watch]:
        """Each group at 0 instances with a backlog metric, by that metric's consumer; not one whose
        backlog could not be read at its last evaluation (watched again once it can)."""
        out: set[Watch] = set()
        for group, s in self.view.scaled.items():
            g = self.view.live_group(group)
            if g is None or g.instances != 0:
                continue
            missing = self.now[group].missing if group in self.now else {}
            for metric in s.message.metrics:
                if metric.kind == "backlog" and (metric.name or metric.kind) not in missing:
                    out.add(Watch(group, metric.backlog.stream, metric.backlog.consumer))
        return out

    async def tick(self, group: str) -> None:
        s = self.view.scaled.get(group)
        if s is None:
            return
        now = self.now.setdefault(group, Now())
        g = self.view.live_group(group)
        if g is None:
            now.reason = f"group {group} does not exist"
            return
        running = self.view.deployments.current(group)
        if running is not None and not running.ended:
            now.current, now.reason = g.instances, f"deployment {running.id} running"
            return
        self._snapshotted.setdefault(group, s.state)  # as the log has it: no snapshot of the same
        if s.decisions:
            seq, last = s.decisions[-1]
            if g.instances != last.to and g.updated < last.at:
                # appended, not (yet) carried out: a crash or a registry that did not answer between
                # the two. Asked again with its key (the registry answers a repeat once), not decided anew
                now.current, now.reason = g.instances, f"asking the registry for {last.to} again"
                await self._scale(group, seq, last)
                return
        ready = self.view.ready_tasks(group)
        since = self.view.ready_times(ready)
        observed = await self.observer.observe(group, s.message, g.instances, ready, since)
        at = self.clock()
        d, state = step(s.policy, s.state, observed.observation, at)
        now.current, now.ready, now.latest, now.missing = g.instances, len(ready), d, observed.missing
        why = [f"{key}: {what}" for key, what in observed.missing.items()]
        if g.instances == 0:
            why += self.wakes.problems(group)
        now.reason = "; ".join([d.reason, *why]) if d.reason else "; ".join(why)
        if d.changed:
            seq = await self._append(group, m.AutoscaleDecided(decision_to_pb(d)), _meta())
            await self._scale(group, seq, d)  # the view folded the decision into the windows
            return
        s.state = state
        if at - s.snapshot_at >= self.snapshot_seconds:
            await self._snapshot(group, s)

    async def _snapshot(self, group: str, s: Scaled) -> None:
        """The windows as an AutoscaleWindow, when they changed in what a later decision reads: the
        values kept in each window, the time of its extreme, the panic. A steady load (the same
        recommendation, each tick replacing the last) writes nothing."""
        last = self._snapshotted.get(group)
        if last is not None and _shape(last) == _shape(s.state):
            return
        await self._append(group, m.AutoscaleWindow(window_to_pb(s.state)), _meta())
        self._snapshotted[group] = s.state

    async def _scale(self, group: str, seq: int, d: Decision) -> None:
        reason = f"autoscaler: {d.rule}"
        sequence = await self.registry.scale(group, d.to, reason=reason, key=f"autoscaler-{group}-{seq}")
        await self.projection.wait_for(sequence)  # the next tick sees the new count
        log.info("%s scaled %d -> %d (%s: %s)", group, d.frm, d.to, d.rule, d.reason)


def _shape(state: State) -> tuple[object, ...]:
    def window(entries: tuple[tuple[float, int], ...]) -> tuple[object, ...]:
        return (entries[0][0] if entries else None, *(v for _, v in entries))

    # the up window is shorter than a snapshot's period: its values matter, not their times
    lows = tuple(v for _, v in state.lows)
    return (window(state.highs), lows, state.panic_last, state.last_up, state.last_down)


def _meta() -> EventMeta:
    return EventMeta.command(ACTOR)
