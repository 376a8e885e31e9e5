"""Reconciliation: from desired groups and actual tasks to launches, kills and events.

One pure call sees the whole cluster: ``decide(desired, tasks, hosts, backoff, now)``. A task fills
its group's slot while it is alive, not being killed and not unhealthy (STAGING and STARTING count,
so a slot is never launched twice). Versions are kept simple here: tasks of older versions count
toward ``instances``; rolling upgrades are the deployer's.

Kills: tasks of deleted groups (orphan), unhealthy ones (replaced in the same call), and surplus,
youngest first as Marathon does. Tasks already asked to go are ``owed`` their kill until they have
ended (see ``domain/kills.py``). Launches: what is missing, unless the group's backoff holds it back,
at most ``launch_limit`` per call over all groups (the rest wait for the next call, not failed).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from libs.spec import GroupSpec
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


@dataclass(frozen=True, slots=True)
class Desired:
    spec: GroupSpec
    version: int
    instances: int
    fetch: tuple[Artifact, ...] = ()  # the build's artifact, fetched before the command runs


@dataclass(frozen=True, slots=True)
class Kill:
    task_id: str
    reason: str  # orphan | unhealthy | surplus


@dataclass(frozen=True)
class Decision:
    launches: tuple[LaunchSpec, ...] = ()
    kills: tuple[Kill, ...] = ()
    failures: tuple[PlacementFailed, ...] = ()
    delayed: Mapping[str, float] = field(default_factory=dict)  # group -> next_attempt_at
    events: tuple[SchedulerEvent, ...] = ()  # to append, in this order
    owed: tuple[str, ...] = ()  # tasks asked to go before this call that have not ended yet

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
) -> Decision:
    """What to do now. ``seed`` makes the new task ids: pass a fresh one on every call."""
    rng = random.Random(seed)
    kills: list[Kill] = []
    owed: list[str] = []
    active: dict[str, list[Task]] = defaultdict(list)
    for t in tasks:
        if t.terminal:
            continue
        if t.kill_reason:
            owed.append(t.id)
        elif t.group not in desired:
            kills.append(Kill(t.id, "orphan"))
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
        want = desired[name]
        mine = active.get(name, [])
        state = backoff.get(name)
        reset = bo.on_new_version(state, want.version, now)
        if reset is not None:
            events.append(reset)
            state = bo.apply(state, reset)
        surplus = len(mine) - want.instances
        if surplus > 0:
            youngest = sorted(mine, key=lambda t: (t.launched_at, t.id), reverse=True)
            kills.extend(Kill(t.id, "surplus") for t in youngest[:surplus])
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
        sites = (Site(t.hostname, t.host_labels) for t in mine)
        result = pool.place(want.spec, count, sites)
        budget -= len(result.placed)
        for p in result.placed:
            launch, launched = _launch(want, p, rng, now)
            launches.append(launch)
            events.append(launched)
        if result.unplaced:
            failed = PlacementFailed(name, result.unplaced, dict(result.reasons), result.hosts, now)
            failures.append(failed)
            events.append(failed)
    events[:0] = [TaskKillRequested(k.task_id, k.reason, now) for k in kills]
    return Decision(tuple(launches), tuple(kills), tuple(failures), delayed, tuple(events), tuple(owed))


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
