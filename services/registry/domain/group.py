"""The group aggregate's commands and ``decide``; its state and ``apply`` are the shared fold
(:mod:`libs.views.groups`), its events the shared contract (:mod:`libs.events.model`)."""

from __future__ import annotations

from dataclasses import dataclass

from libs.errors import Conflict, FieldViolation, NotFound, ValidationFailed
from libs.events.model import (
    GroupCreated,
    GroupDeleted,
    GroupEvent,
    GroupRolledBack,
    GroupRolloutChanged,
    GroupScaled,
    GroupUpdated,
    VersionTarget,
)
from libs.spec import MAX_INSTANCES, GroupSpec
from libs.views.groups import Group, apply

__all__ = [
    "CreateGroup",
    "DeleteGroup",
    "Group",
    "GroupCommand",
    "GroupCreated",
    "GroupDeleted",
    "GroupEvent",
    "GroupRolledBack",
    "GroupScaled",
    "GroupUpdated",
    "RollbackGroup",
    "RolloutTarget",
    "ScaleGroup",
    "SetRollout",
    "UpdateGroup",
    "apply",
    "decide",
]

# ---- commands (imperative) ----


@dataclass(frozen=True)
class CreateGroup:
    spec: GroupSpec


@dataclass(frozen=True)
class UpdateGroup:
    spec: GroupSpec
    expected_version: int = 0


@dataclass(frozen=True)
class ScaleGroup:
    name: str
    instances: int
    reason: str = ""
    expected_version: int = 0


@dataclass(frozen=True)
class DeleteGroup:
    name: str
    expected_version: int = 0


@dataclass(frozen=True)
class RollbackGroup:
    name: str
    version: int
    spec_of_version: GroupSpec | None  # looked up in the group's history by the handler
    expected_version: int = 0


@dataclass(frozen=True)
class RolloutTarget:
    version: int
    instances: int
    in_service: bool = True
    weight: float | None = None


@dataclass(frozen=True)
class SetRollout:
    """What runs per version (the deployer's command); the specs are the registry's."""

    name: str
    targets: tuple[RolloutTarget, ...]
    deployment: str = ""
    reason: str = ""
    expected_version: int = 0


GroupCommand = CreateGroup | UpdateGroup | ScaleGroup | DeleteGroup | RollbackGroup | SetRollout


def _rollout(g: Group, cmd: SetRollout) -> list[GroupEvent]:
    """Each target must be of the current version or of a version the group runs now (those are
    the specs the registry can vouch for); versions at most once; counts and weights in range."""
    bad = []
    if not cmd.targets:
        bad.append(FieldViolation("targets", "at least one target"))
    seen: set[int] = set()
    out = []
    for i, t in enumerate(cmd.targets):
        where = f"targets[{i}]"
        if t.version in seen:
            bad.append(FieldViolation(f"{where}.version", f"version {t.version} twice"))
        seen.add(t.version)
        running = g.target(t.version)
        spec = running.spec if running is not None else g.spec if t.version == g.version else None
        if spec is None:
            known = sorted({g.version, *(x.version for x in g.targets)})
            bad.append(
                FieldViolation(
                    f"{where}.version", f"group {g.name!r} has no version {t.version} to run {known}"
                )
            )
        if not 0 <= t.instances <= MAX_INSTANCES:
            bad.append(FieldViolation(f"{where}.instances", f"must be between 0 and {MAX_INSTANCES}"))
        if t.weight is not None and not 0 <= t.weight <= 100:
            bad.append(FieldViolation(f"{where}.weight", "a percentage: 0 to 100"))
        if spec is not None:
            out.append(VersionTarget(t.version, spec, t.instances, t.in_service, t.weight))
    if bad:
        raise ValidationFailed(bad)
    if tuple(out) == g.targets and cmd.deployment == g.deployment:
        return []
    return [GroupRolloutChanged(tuple(out), cmd.deployment, cmd.reason)]


def _live(group: Group | None, name: str) -> Group:
    if group is None or group.deleted:
        raise NotFound(f"group {name!r} does not exist")
    return group


def _check_version(group: Group, expected: int) -> None:
    if expected and expected != group.version:
        raise Conflict(
            f"group {group.spec.name!r} is at version {group.version}, not {expected}",
            current_version=group.version,
        )


def decide(group: Group | None, cmd: GroupCommand) -> list[GroupEvent]:
    """The events a command produces against the group's current state (or a domain error).

    Checks that need other aggregates (does the cluster exist?) are the registry's, in
    :func:`services.registry.domain.registry.decide_group_command`.
    """
    match cmd:
        case CreateGroup(spec):
            if group is not None and not group.deleted:
                raise Conflict(f"group {spec.name!r} already exists (version {group.version})")
            return [GroupCreated(spec, (group.version if group else 0) + 1)]
        case UpdateGroup(spec, expected):
            g = _live(group, spec.name)
            _check_version(g, expected)
            if spec == g.current_spec():
                return []  # nothing changed: no new version
            return [GroupUpdated(spec, g.version + 1)]
        case ScaleGroup(name, instances, reason, expected):
            g = _live(group, name)
            _check_version(g, expected)
            if not 0 <= instances <= MAX_INSTANCES:
                raise ValidationFailed(
                    [FieldViolation("instances", f"must be between 0 and {MAX_INSTANCES}")]
                )
            if instances == g.instances:
                return []
            return [GroupScaled(instances, g.instances, reason)]
        case DeleteGroup(name, expected):
            g = _live(group, name)
            _check_version(g, expected)
            return [GroupDeleted(g.version)]
        case RollbackGroup(name, version, spec_of_version, expected):
            g = _live(group, name)
            _check_version(g, expected)
            if spec_of_version is None or not 1 <= version <= g.version:
                raise NotFound(f"group {name!r} has no version {version} (current {g.version})")
            # restore the configuration, keep the current scale: scaling is not configuration
            restored = spec_of_version.model_copy(update={"instances": g.instances})
            return [GroupRolledBack(restored, g.version + 1, version)]
        case SetRollout(name):
            g = _live(group, name)
            _check_version(g, cmd.expected_version)
            return _rollout(g, cmd)
    raise TypeError(f"not a group command: {cmd!r}")
