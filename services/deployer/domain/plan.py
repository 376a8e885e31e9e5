"""What a deployment does next: ``plan(deployment, group, counts, now) -> Plan``. Pure.

A plan is the registry command to send (the new spec, a rollback of the spec, or the version
targets) and the deployment events that follow from what the tasks say. The service sends the
registry command first and appends the events after: a deployer killed in between plans the same
command again from the same log (and its idempotency key makes the repeat a no-op).

Per strategy (``n`` = the group's instances; "settled" = ready for ``min_ready_seconds``):

- rolling (Marathon): new tasks start up to ``max_running`` (old targets and tasks count); old
  targets shrink only as new tasks settle, never leaving fewer than ``min_ready`` ready even if the
  scheduler kills ready old tasks first; the oldest versions shrink first; never the new one.
  When no new task has room (no surge), old ones stop first within ``min_ready``.
- recreate: [new: 0] until no old task is left, then [new: n].
- canary: steps over [stable: n, new: c] (``bounds.canary_count``; set_weight also sets SRV weights);
  pause (seconds, or until promoted: the deployment shows paused), analysis; then a rolling
  promotion to [new: n].
- blue-green: [old, new: n out of service]; once all n settled (and promoted, unless auto_promote),
  ONE SetRollout flips in_service; after ``scale_down_delay_seconds``, [new: n].
- migration: [old, new: n in the target cluster], both in service; once all n settled and answered by
  DNS (when the service has DNS to ask: ``dns`` None means readiness alone), [new: n].

The progress deadline counts from the last progress (a new task settled, a step began or ended); time
paused and pause/analysis steps do not count. A failed deployment (deadline, analysis) rolls back
unless ``no_auto_rollback``; a rollback (or an abort) restores the stable spec with RollbackGroup, then
rolls back to the stable version within the same bounds (a rolling plan towards it), leaving nothing
of the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.events import model as m
from libs.spec import GroupSpec
from libs.views.deployments import Deployment, apply
from libs.views.groups import Group, same_run
from services.deployer.domain import analysis as an
from services.deployer.domain.bounds import Bounds, bounds, canary_count
from services.deployer.domain.counts import VersionCount, of
from services.deployer.domain.rolling import Target, alive_besides, roll


@dataclass(frozen=True)
class Plan:
    events: tuple[m.DeploymentEvent, ...] = ()
    targets: tuple[Target, ...] | None = None  # SetRollout, when not what the group has
    update_spec: GroupSpec | None = None  # UpdateGroup (the new spec)
    rollback_to: int = 0  # RollbackGroup to this version (the stable spec)
    wake_at: float | None = None  # look again then, even if nothing happens
    step: str = ""  # what the registry command is for (its idempotency key names it)


@dataclass
class _Out:
    events: list[m.DeploymentEvent] = field(default_factory=list)
    targets: tuple[Target, ...] | None = None
    wake: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Inputs:
    counts: Mapping[int, VersionCount]
    now: float
    metrics: an.MetricSource = field(default_factory=an.NoMetrics)
    dns: frozenset[str] | None = None  # task ids DNS answers under the service; None: no DNS to ask


def current(group: Group) -> tuple[Target, ...]:
    return tuple(Target(t.version, t.instances, t.in_service, t.weight) for t in group.targets)


def plan(d: Deployment, group: Group, inputs: Inputs, *, rounds: int = 8) -> Plan:
    events: list[m.DeploymentEvent] = []
    wake: float | None = None
    targets: tuple[Target, ...] | None = None
    for _ in range(rounds):
        if d.ended:
            break
        if d.rolling_back and d.from_spec is not None and not same_run(group.spec, d.from_spec):
            return Plan(tuple(events), rollback_to=d.from_version, step="rollback-spec")
        if not d.rolling_back and d.to_version == 0:
            if same_run(group.spec, d.to_spec) and (group.version != d.from_version or d.automatic):
                out = _Out([m.DeploymentTargetSet(d.id, group.version)])
            else:
                return Plan(tuple(events), update_spec=d.to_spec, step="spec")
        else:
            out = _round(d, group, inputs)
        targets = out.targets
        wake = min(out.wake) if out.wake else None
        if not out.events:
            break
        events.extend(out.events)
        for e in out.events:
            d = apply(d, e, inputs.now, d.group)
    if targets is not None and _same(targets, group):
        targets = None
    return Plan(tuple(events), targets, wake_at=wake, step=f"targets@{group.aggregate_version}")


def _kept(targets: tuple[Target, ...], group: Group) -> list[tuple[int, int, bool, float | None]]:
    """As the group's fold keeps them: a 0-instance target of a version not current is dropped."""
    return sorted(
        (t.version, t.instances, t.in_service, t.weight)
        for t in targets
        if t.instances > 0 or t.version == group.version
    )  # type: ignore[type-var]


def _same(targets: tuple[Target, ...], group: Group) -> bool:
    return _kept(targets, group) == _kept(current(group), group)


def _progress(d: Deployment, n: int, b: Bounds, new: VersionCount, old_alive: int) -> list[m.DeploymentEvent]:
    e = m.DeploymentProgressed(d.id, new.settled, new.alive, old_alive, b.min_ready, b.max_running, n)
    seen = (d.new_ready, d.new_running, d.old_running, d.min_ready, d.max_running, d.instances)
    return [] if seen == (e.new_ready, e.new_running, e.old_running, e.min_ready, e.max_running, n) else [e]


def _round(d: Deployment, g: Group, i: Inputs) -> _Out:
    n = g.instances
    b = bounds(n, d.strategy)
    goal = _rollback_version(d, g) if d.rolling_back else d.to_version
    new = of(i.counts, goal)
    old_alive = alive_besides(i.counts, goal)
    out = _Out(_progress(d, n, b, new, old_alive))
    if d.rolling_back:
        out.targets, done = roll(n, goal, g, i.counts, b)
        if done and old_alive == 0:
            out.events.append(m.DeploymentRolledBack(d.id, d.reason, goal))
        _wake_settle(out, new)
        return out
    if d.current_step < 0:
        out.events.append(m.DeploymentStepStarted(d.id, 0, d.steps[0].name))
        return out
    if d.paused and not d.paused_by_step:
        out.targets = None
        return out
    index = d.current_step
    step_done, failure = _step(d, g, i, index, n, b, out)
    if failure:
        out.events.append(m.DeploymentFailed(d.id, failure))
        return out
    due = progress_deadline(d)
    if not step_done and due is not None:
        deadline = due - d.progressed_at
        if i.now >= due:
            out.events.append(m.DeploymentFailed(d.id, f"no progress for {deadline:g}s (progress deadline)"))
            return out
        out.wake.append(d.progressed_at + deadline)
    if step_done:
        out.events.append(m.DeploymentStepFinished(d.id, index, "done"))
        last = len(d.steps) - 1
        if index < last:
            nxt = last if d.promote_all and d.strategy.kind == "canary" else index + 1
            for skipped in range(index + 1, nxt):
                out.events.append(m.DeploymentStepFinished(d.id, skipped, "skipped", "promoted"))
            out.events.append(m.DeploymentStepStarted(d.id, nxt, d.steps[nxt].name))
        else:
            out.events.append(m.DeploymentSucceeded(d.id))
    return out


def _wake_settle(out: _Out, c: VersionCount) -> None:
    if c.next_settled_at is not None:
        out.wake.append(c.next_settled_at)


def _rollback_version(d: Deployment, g: Group) -> int:
    """The stable version's target: itself while the group still runs it, else the version the
    restored spec got (the same spec under a new number)."""
    return d.from_version if g.target(d.from_version) is not None else g.version


def progress_deadline(d: Deployment) -> float | None:
    """When the deployment fails for want of progress (unix seconds); None: no deadline runs (paused,
    ended, or in a step timed by itself: a pause, an analysis, blue-green's scale-down)."""
    if d.ended or d.paused or d.rolling_back:
        return None
    index = d.current_step
    kind = _step_kind(d, index)
    if kind in ("pause", "analysis") or (kind == "blue-green" and index == 2):
        return None
    return d.progressed_at + (d.strategy.progress_deadline_seconds or 600.0)


def _step_kind(d: Deployment, index: int) -> str:
    kind = d.strategy.kind
    if kind == "canary" and index < len(d.strategy.steps):
        return d.strategy.steps[index].kind
    return kind


def _canary_shape(d: Deployment, index: int, n: int) -> tuple[int, float | None]:
    count, weight = 1, None
    for s in d.strategy.steps[: index + 1]:
        if s.kind in ("share", "weight"):
            count = canary_count(n, s)
        if s.kind == "weight":
            weight = s.value
    return count, weight


def _olds(g: Group, new: int, in_service: bool = True, weight: float | None = None) -> list[Target]:
    """The stable targets beside the new one: one stable version keeps the group's instances (a
    scale during the deployment moves it); several (a superseded roll) keep what they have."""
    olds = [t for t in g.targets if t.version != new]
    sizes = [g.instances] if len(olds) == 1 else [t.instances for t in olds]
    total = sum(sizes) or 1
    return [
        Target(t.version, size, in_service, None if weight is None else weight * size / total)
        for t, size in zip(olds, sizes, strict=True)
    ]


def _step(d: Deployment, g: Group, i: Inputs, index: int, n: int, b: Bounds, out: _Out) -> tuple[bool, str]:
    """Targets for the step under way; (whether it is done, why it failed)."""
    new_v = d.to_version
    new = of(i.counts, new_v)
    promoted = d.promoted_step == index
    kind = d.strategy.kind
    step = d.step(index)
    started = step.started if step and step.started is not None else i.now
    _wake_settle(out, new)
    old_alive = alive_besides(i.counts, new_v)
    if kind in ("rolling",) or (kind == "canary" and index >= len(d.strategy.steps)):
        out.targets, done = roll(n, new_v, g, i.counts, b)
        return done, ""
    if kind == "recreate":
        if index == 0:
            out.targets = (Target(new_v, 0),)
            return old_alive == 0, ""
        out.targets = (Target(new_v, n),)
        return new.settled >= n, ""
    if kind == "canary":
        c, w = _canary_shape(d, index, n)
        out.targets = (*_olds(g, new_v, True, None if w is None else 100 - w), Target(new_v, c, True, w))
        s = d.strategy.steps[index]
        if promoted:
            return True, ""
        if s.kind in ("share", "weight"):
            return new.settled >= c, ""
        if s.kind == "pause":
            if s.value is None:
                if not d.paused:
                    out.events.append(m.DeploymentPaused(d.id, "step: paused until promoted"))
                return False, ""
            out.wake.append(started + s.value)
            return i.now >= started + s.value, ""
        a = s.analysis or m.Analysis(0.0)
        verdict = an.evaluate(a, _values(d, g, i, new, c, started), started, i.now)
        if verdict.outcome == "fail":
            return False, f"analysis failed: {verdict.message}"
        out.wake.append(started + a.seconds)
        return verdict.outcome == "pass", ""
    if kind == "blue-green":
        if index == 0:
            out.targets = (*_olds(g, new_v), Target(new_v, n, False))
            return new.settled >= n, ""
        if index == 1:
            out.targets = (*_olds(g, new_v), Target(new_v, n, False))
            if d.promoted_step >= 0 or d.strategy.auto_promote:  # promoted now, or while it started
                out.targets = (*_olds(g, new_v, False), Target(new_v, n, True))  # the switch: one command
                return True, ""
            if not d.paused:
                out.events.append(m.DeploymentPaused(d.id, "step: ready, waiting for promotion to switch"))
            return False, ""
        delay = d.strategy.scale_down_delay_seconds or 0.0
        out.wake.append(started + delay)
        if i.now >= started + delay or promoted:
            out.targets = (Target(new_v, n),)
            return old_alive == 0, ""
        out.targets = (*_olds(g, new_v, False), Target(new_v, n, True))
        return False, ""
    if kind == "migration":
        if index == 0:
            out.targets = (*_olds(g, new_v), Target(new_v, n))
            answered = i.dns is None or len(new.settled_ids & i.dns) >= n
            return new.settled >= n and answered, ""
        out.targets = (Target(new_v, n),)
        return old_alive == 0 and new.settled >= n, ""
    return False, f"unknown strategy {kind!r}"


def _values(
    d: Deployment, g: Group, i: Inputs, new: VersionCount, target: int, since: float
) -> dict[str, Any]:
    values: dict[str, float | None] = {
        "failed_tasks": float(new.failed),
        "restarts": float(new.ended),
        "ready_fraction": new.ready / max(1, target),
    }
    a = d.strategy.steps[d.current_step].analysis if 0 <= d.current_step < len(d.strategy.steps) else None
    for t in a.thresholds if a else ():
        if t.metric not in values:
            values[t.metric] = i.metrics.value(g.name, t.metric, new.settled_ids, since)
    return values
