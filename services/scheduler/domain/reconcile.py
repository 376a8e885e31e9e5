"""Reconciliation: from desired groups and actual tasks to launches, kills and events.

One pure call sees the whole cluster: ``decide(desired, tasks, hosts, backoff, now)``. A task fills
its group's slot while it is alive, not being killed and not unhealthy (STAGING and STARTING count,
so a slot is never launched twice).

Versions: a group runs its version targets (:mod:`libs.views.groups`), each with its own count and
spec; the deployer moves them. Each target keeps exactly its count of tasks of its version; tasks of
a version with no target here are killed (``old-version``), and a target's surplus goes not-ready
first, then youngest. A target never loses tasks to make room for another: what a roll-out
replaces, and when, is the deployer's call, within its bounds.

Kills: tasks of groups not run here (orphan: deleted, or moved to another cluster), unhealthy ones
(replaced in the same call), old versions and surplus. A task that is serving when it is asked to go
is drained: its kill is stored at once (it leaves DNS answers) and sent ``drain_seconds`` later, so
clients holding an answer for its TTL still reach it. Tasks already asked to go are ``owed`` their
kill until they have ended (see ``domain/kills.py``), once their drain is over. Launches: what is
missing, unless the version's backoff holds it back, at most ``launch_limit`` per call over all
groups (the rest wait for the next call, not failed).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from libs.spec import GroupSpec
from libs.views import ready
from services.scheduler.domain import backoff as bo
from services.scheduler.domain.health import spec_of
from services.scheduler.domain.placement import Placed, Pool, Site
from services.scheduler.domain.tasks import (
    GroupBackoffChanged,
    PlacementFailed,
    SchedulerEvent,
    Task,
    TaskKillRequested,
    TaskLaunched,
)
from services.scheduler.ports import Artifact, Host, LaunchSpec

DEFAULT_LAUNCH_LIMIT = 1000


#: kills of serving tasks that wait for clients' DNS answers to expire
DRAINED = frozenset({"surplus", "old-version", "orphan"})


@dataclass(frozen=True, slots=True)
class Desired:
    """What a group runs here: its newest version target (``spec``, ``version``, ``instances``,
    ``fetch``) and any other targets on this cluster (``others``: the versions a deployment is
    moving from)."""

    spec: GroupSpec
    version: int
    instances: int
    fetch: tuple[Artifact, ...] = ()  # the build's artifact, fetched before the command runs
    others: tuple[Desired, ...] = ()

    @property
    def wants(self) -> tuple[Desired, ...]:
        return (self, *self.others)

    def want(self, version: int) -> Desired | None:
        for w in self.wants:
            if w.version == version:
                return w
        return None


@dataclass(frozen=True, slots=True)
class Kill:
    task_id: str
    reason: str  # orphan | unhealthy | surplus | old-version
    drain_until: float = 0.0  # sent then; 0: at once


@dataclass(frozen=True)
class Decision:
    launches: tuple[LaunchSpec, ...] = ()
    kills: tuple[Kill, ...] = ()
    failures: tuple[PlacementFailed, ...] = ()
    delayed: Mapping[str, float] = field(default_factory=dict)  # group -> next_attempt_at
    events: tuple[SchedulerEvent, ...] = ()  # to append, in this order
    owed: tuple[str, ...] = ()  # tasks asked to go before this call, drained, not ended yet
    draining_until: float = 0.0  # the earliest drain that ends after now (0: none): wake then

    @property
    def idle(self) -> bool:
        """Nothing to do and nothing pending: the backend may suppress offers."""
        return not (self.launches or self.kills or self.failures or self.delayed)


def decide(
    desired: Mapping[str, Desired],
    tasks: Iterable[Task],
    hosts: Sequence[Host],
    backoff: Mapping[str, bo.GroupBackoff],
    now: float,
    *,
    launch_limit: int = DEFAULT_LAUNCH_LIMIT,
    seed: int = 0,
    drain_seconds: float = 0.0,
) -> Decision:
    """What to do now. ``seed`` makes the new task ids: pass a fresh one on every call."""
    rng = random.Random(seed)
    kills: list[Kill] = []
    owed: list[str] = []
    draining = 0.0
    active: dict[str, list[Task]] = defaultdict(list)
    drain_until = now + drain_seconds if drain_seconds > 0 else 0.0

    def stop(task: Task, reason: str, checked: bool) -> None:
        serving = reason in DRAINED and ready(task, checked)
        kills.append(Kill(task.id, reason, drain_until if serving else 0.0))

    for t in tasks:
        if t.terminal:
            continue
        if t.kill_reason:
            if t.kill_at > now:
                draining = t.kill_at if not draining else min(draining, t.kill_at)
            else:
                owed.append(t.id)
        elif t.group not in desired:
            stop(t, "orphan", t.healthy is not None)
        elif t.healthy is False:
            kills.append(Kill(t.id, "unhealthy"))
        elif t.active:
            active[t.group].append(t)

    events: list[SchedulerEvent] = []
    launches: list[LaunchSpec] = []
    failures: list[PlacementFailed] = []
    delayed: dict[str, float] = {}
    pool = Pool(hosts)
    budget = max(0, launch_limit)
    for name in sorted(desired):
        group = desired[name]
        mine = active.get(name, [])
        by_version: dict[int, list[Task]] = defaultdict(list)
        for t in mine:
            by_version[t.group_version].append(t)
        state = backoff.get(name)
        reset = bo.on_new_version(state, group.version, now)
        if reset is not None:
            events.append(reset)
            state = bo.apply(state, reset)
        for version, old in by_version.items():
            if group.want(version) is None:
                checked = group.spec.health_check is not None
                for t in old:
                    stop(t, "old-version", checked)
        sites = [Site(t.hostname, t.host_labels) for t in mine]
        for want in group.wants:
            have = by_version.get(want.version, [])
            surplus = len(have) - want.instances
            if surplus > 0:
                checked = want.spec.health_check is not None
                # not serving first (nobody loses an answer), then the youngest, as Marathon does
                order = sorted(have, key=lambda t: (ready(t, checked), -t.launched_at, t.id))
                for t in order[:surplus]:
                    stop(t, "surplus", checked)
                continue
            missing = -surplus
            if missing == 0:
                continue
            if state is not None and state.waiting(want.version, now):
                delayed[name] = state.next_attempt_at
                continue
            count = min(missing, budget)
            if count == 0:
                continue
            result = pool.place(want.spec, count, iter(sites))
            budget -= len(result.placed)
            for p in result.placed:
                launch, launched = _launch(want, p, rng, now)
                launches.append(launch)
                events.append(launched)
                sites.append(Site(p.hostname, dict(p.labels)))
            if result.unplaced:
                failed = PlacementFailed(name, result.unplaced, dict(result.reasons), result.hosts, now)
                failures.append(failed)
                events.append(failed)
    events[:0] = [TaskKillRequested(k.task_id, k.reason, now, k.drain_until) for k in kills]
    return Decision(
        tuple(launches), tuple(kills), tuple(failures), delayed, tuple(events), tuple(owed), draining
    )


def _launch(want: Desired, p: Placed, rng: random.Random, now: float) -> tuple[LaunchSpec, TaskLaunched]:
    spec = want.spec
    task_id = f"{spec.name}.{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    res = spec.resources
    launch = LaunchSpec(
        task_id=task_id,
        group=spec.name,
        group_version=want.version,
        host_id=p.host_id,
        offer_id=p.offer_id,
        cmd=spec.cmd,
        image=spec.image,
        args=tuple(spec.args),
        env=dict(spec.env),
        cpus=res.cpus,
        mem=res.mem,
        disk=res.disk,
        ports=dict(p.ports),
        health_check=spec_of(spec.health_check) if spec.health_check else None,
        labels=dict(spec.labels),
        fetch=want.fetch,
    )
    launched = TaskLaunched(
        task_id, spec.name, want.version, p.host_id, p.hostname, dict(p.ports),
        res.cpus, res.mem, res.disk, now, dict(p.labels),
    )  # fmt: skip
    return launch, launched


def backoff_events(
    desired: Mapping[str, Desired],
    backoff: Mapping[str, bo.GroupBackoff],
    before: Task,
    ended: Task,
    now: float,
) -> GroupBackoffChanged | None:
    """The backoff event a task's terminal status causes (for the status-folding side): ``before`` is
    the task until then, ``ended`` the task with that status."""
    want = desired.get(ended.group)
    if want is None or ended.state not in bo.COUNTED or ended.kill_reason:
        return None
    if not bo.failed_to_start(before, ended.updated_at, want.spec.health_check is not None):
        return None
    return bo.on_task_ended(
        backoff.get(ended.group), ended.group, want.version,
        ended.group_version, ended.state, want.spec.backoff, now,
    )  # fmt: skip
