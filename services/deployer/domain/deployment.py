"""The deployment aggregate: commands and ``decide``; its fold is :mod:`libs.views.deployments`
(shared with every reader), re-exported here as ``apply``.

One deployment per group at a time: a Deploy while one runs is a Conflict (409) unless it
``supersede``-s it (the running one ends ``superseded`` and the new one starts from the same stable
version). Undo starts a deployment back to the spec the group's last successful deployment started
from; while a deployment runs, Undo aborts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libs.errors import Conflict, FieldViolation, NotFound, ValidationFailed
from libs.events import model as m
from libs.spec import GroupSpec
from libs.views.deployments import Deployment, DeploymentsView, apply
from libs.views.groups import Group, same_run
from services.deployer.domain.bounds import KINDS, resolve

__all__ = ["Abort", "Deploy", "Pause", "Promote", "Resume", "Undo", "apply", "decide", "stable_version"]


@dataclass(frozen=True)
class Deploy:
    group: str
    build: str = ""
    spec: GroupSpec | None = None
    cluster: str = ""
    strategy: m.Strategy | None = None
    supersede: bool = False
    automatic: bool = False  # the deployer's own: the group's spec changed elsewhere


@dataclass(frozen=True)
class Pause:
    group: str
    reason: str = ""


@dataclass(frozen=True)
class Resume:
    group: str


@dataclass(frozen=True)
class Promote:
    group: str
    all: bool = False


@dataclass(frozen=True)
class Abort:
    group: str
    reason: str = ""


@dataclass(frozen=True)
class Undo:
    group: str
    reason: str = ""


Command = Deploy | Pause | Resume | Promote | Abort | Undo


def stable_version(group: Group) -> int:
    """The version that runs most now (what a deployment starts from)."""
    if not group.targets:
        return group.version
    return max(group.targets, key=lambda t: (t.instances, -t.version)).version


def _target_spec(cmd: Deploy, group: Group, builds: Mapping[str, m.Build]) -> GroupSpec:
    spec = cmd.spec or group.spec
    if cmd.spec is not None and cmd.spec.name != group.name:
        raise ValidationFailed([FieldViolation("spec.name", f"must be the group's name {group.name!r}")])
    update: dict[str, object] = {"instances": group.instances}
    if cmd.build:
        build = builds.get(cmd.build)
        if build is None:
            raise ValidationFailed([FieldViolation("build", f"no build {cmd.build!r} is registered")])
        update |= {"build": cmd.build, "image": None}
        if not group.spec.build and build.cmd:
            update["cmd"] = None  # a plain command group takes the build's own command
    if cmd.cluster:
        update["cluster"] = cmd.cluster
    return spec.model_copy(update=update)


def _check_strategy(s: m.Strategy) -> None:
    bad = []
    if s.kind not in KINDS:
        bad.append(FieldViolation("strategy.kind", f"one of {', '.join(sorted(KINDS))}"))
    for i, step in enumerate(s.steps):
        if step.kind == "share" and not 0 < (step.value or 0) <= 1:
            bad.append(FieldViolation(f"strategy.steps[{i}].set_share", "a fraction in (0, 1]"))
        if step.kind == "weight" and not 0 < (step.value or 0) <= 100:
            bad.append(FieldViolation(f"strategy.steps[{i}].set_weight", "a percentage in (0, 100]"))
        if step.kind == "pause" and step.value is not None and step.value < 0:
            bad.append(FieldViolation(f"strategy.steps[{i}].pause.seconds", "not negative"))
    for name in ("minimum_health_capacity", "maximum_over_capacity"):
        value = getattr(s, name)
        if value is not None and not 0 <= value <= 1:
            bad.append(FieldViolation(f"strategy.{name}", "between 0 and 1"))
    if s.steps and s.kind != "canary":
        bad.append(FieldViolation("strategy.steps", "steps are for a canary"))
    if bad:
        raise ValidationFailed(bad)


def _deploy(view: DeploymentsView, group: Group, cmd: Deploy, builds: Mapping[str, m.Build],
            clusters: Mapping[str, m.Cluster]) -> list[m.DeploymentEvent]:  # fmt: skip
    running = view.current(group.name)
    if running is not None and not cmd.supersede:
        raise Conflict(
            f"deployment {running.id} of group {group.name!r} is {running.state}",
            hint="wait for it, abort it, or deploy with supersede",
        )
    if cmd.cluster and clusters and cmd.cluster not in clusters:
        raise ValidationFailed([FieldViolation("cluster", f"no cluster {cmd.cluster!r} is registered")])
    if cmd.strategy is not None:
        _check_strategy(cmd.strategy)
    to_spec = _target_spec(cmd, group, builds)
    migrating = to_spec.cluster != group.spec.cluster or any(
        t.spec.cluster != to_spec.cluster for t in group.targets if t.instances > 0
    )
    strategy = resolve(cmd.strategy, to_spec, migrating)
    if group.settled and same_run(group.spec, to_spec) and not cmd.automatic:
        raise ValidationFailed(
            [FieldViolation("spec", "nothing to deploy: the group runs this spec already")]
        )
    events: list[m.DeploymentEvent] = []
    new_id = view.next_id(group.name)
    if running is not None:
        events.append(m.DeploymentSuperseded(running.id, new_id))
        from_version, from_spec = running.from_version, running.from_spec
    else:
        from_version = stable_version(group)
        from_spec = group.spec_of(from_version)
    events.append(
        m.DeploymentCreated(
            new_id,
            strategy,
            from_version,
            from_spec.build or "" if from_spec else "",
            from_spec.cluster if from_spec else group.cluster,
            to_spec,
            running is not None,
            from_spec,
            cmd.automatic,
        )
    )
    if cmd.automatic or (same_run(group.spec, to_spec) and group.version != from_version):
        events.append(m.DeploymentTargetSet(new_id, group.version))  # the registry holds it already
    return events


def _running(view: DeploymentsView, name: str) -> Deployment:
    d = view.current(name)
    if d is None:
        raise NotFound(f"group {name!r} has no deployment under way")
    return d


def decide(
    view: DeploymentsView,
    group: Group | None,
    cmd: Command,
    builds: Mapping[str, m.Build] | None = None,
    clusters: Mapping[str, m.Cluster] | None = None,
) -> list[m.DeploymentEvent]:
    """The events a command leads to (none: nothing to do); errors as libs.errors."""
    if group is None or group.deleted:
        raise NotFound(f"group {cmd.group!r} does not exist")
    match cmd:
        case Deploy():
            return _deploy(view, group, cmd, builds or {}, clusters or {})
        case Pause(name, reason):
            d = _running(view, name)
            if d.rolling_back:
                raise Conflict(f"deployment {d.id} is rolling back: it cannot be paused")
            return [] if d.paused and not d.paused_by_step else [m.DeploymentPaused(d.id, reason or "paused")]
        case Resume(name):
            d = _running(view, name)
            return [m.DeploymentResumed(d.id)] if d.paused else []
        case Promote(name, every):
            d = _running(view, name)
            if d.rolling_back:
                raise Conflict(f"deployment {d.id} is rolling back: there is nothing to promote")
            return [m.DeploymentPromoted(d.id, every)]
        case Abort(name, reason):
            d = _running(view, name)
            return [] if d.rolling_back else [m.DeploymentAborted(d.id, reason)]
        case Undo(name, reason):
            under_way = view.current(name)
            if under_way is not None:
                return [] if under_way.rolling_back else [m.DeploymentAborted(under_way.id, reason or "undo")]
            last = view.last_succeeded(name)
            if last is None or last.from_spec is None:
                raise NotFound(f"group {name!r} has no successful deployment to undo")
            back = last.from_spec.model_copy(update={"instances": group.instances})
            return _deploy(view, group, Deploy(name, spec=back), builds or {}, clusters or {})
    raise TypeError(f"not a deployment command: {cmd!r}")
