"""The autoscaler's service layer: policy commands (validate, append) and the loop that evaluates
every autoscaled group once a tick.

Each tick, per group with a policy:
1. no live group: nothing ("group <name> does not exist");
2. a deployment of the group runs (``libs.views.deployments``, not ended): no scaling, no
   evaluation ("deployment <id> running") — the deployer owns the count until it ends;
3. otherwise the Observation (the group's instance count, its ready tasks by the shared readiness
   rule of ``libs.views``, the sources' samples) goes through ``domain.step``.
A decision that changes the count is appended as ``AutoscaleDecided``, then asked of the registry
(``ScaleGroup``, with the idempotency key ``autoscaler-<group>-<sequence of the decision>``, so a
restart between the two sends the same command, answered once). Holds are not logged; the windows
are snapshotted as ``AutoscaleWindow`` when they changed, at most every ``snapshot_seconds``: the
log grows by a decision per change and a snapshot per ~15 s of an open window, and a restart
resumes from them. After a SIGKILL at most ``snapshot_seconds`` of hold recommendations are lost
(a stop asked for snapshots first): the window's highest and every count change with its cooldowns
are in the log, so a restart neither jumps nor flaps.

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
from dataclasses import dataclass

from bay.v1 import autoscale_pb2

from libs.errors import BayError, Conflict, NotFound, ValidationFailed
from libs.eventlog import EventLog, Projection
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from services.autoscaler.adapters.observe import Observer
from services.autoscaler.adapters.wire import decision_to_pb, resolved_pb, violations, window_to_pb
from services.autoscaler.domain import Decision, State, step
from services.autoscaler.ports import ScalePort
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
    ) -> None:
        self.log = event_log
        self.projection = projection
        self.registry = registry
        self.observer = observer
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.snapshot_seconds = snapshot_seconds
        self.now: dict[str, Now] = {}
        self._snapshotted: dict[str, State] = {}

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
        return self.view.scaled[p.group], False

    async def remove_policy(self, group: str, meta: EventMeta) -> bool:
        if group not in self.view.scaled:
            return False
        await self._append(group, m.AutoscalePolicyRemoved(meta.actor), meta)
        self.now.pop(group, None)
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
        await self._resume()
        while not stop.is_set():
            for group in list(self.view.scaled):
                try:
                    await self.tick(group)
                except BayError as exc:
                    self.now.setdefault(group, Now()).reason = f"{exc.message}"
                    log.warning("autoscaling %s: %s", group, exc.message)
            try:
                await asyncio.wait_for(stop.wait(), self.tick_seconds)
            except TimeoutError:
                pass
        for group, s in list(self.view.scaled.items()):  # a stop asked for: the windows exactly
            with contextlib.suppress(BayError):
                await self._snapshot(group, s)

    async def _resume(self) -> None:
        """A decision appended but (maybe) not asked of the registry before a crash: ask again,
        with its key (the registry answers a repeat once)."""
        for group, s in self.view.scaled.items():
            g = self.view.live_group(group)
            if not s.decisions or g is None:
                continue
            seq, d = s.decisions[-1]
            if g.instances != d.to and g.updated < d.at:
                await self._scale(group, seq, d)
            self._snapshotted[group] = s.state

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
        ready = self.view.ready_tasks(group)
        obs = await self.observer.observe(group, s.message, g.instances, ready)
        at = self.clock()
        d, state = step(s.policy, s.state, obs, at)
        now.current, now.ready, now.latest, now.reason = g.instances, len(ready), d, d.reason
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
