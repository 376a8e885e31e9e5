"""The one fold of groups: each group as the registry's events say it is.

A group's spec is :class:`libs.spec.GroupSpec` (defaults and the service name are the spec's own);
``instances`` is kept apart from the spec because scaling is frequent and is not configuration, so
folding a scale event does not copy the spec. Deleted groups stay as tombstones (``deleted``): a group
created again with the same name goes on from the version its tombstone holds.

What runs is ``targets``: per spec version, how many tasks, whether they answer under the service
name and their share of its traffic. The scheduler runs exactly that; DNS answers by it. The rules:

- a created group runs its first version: one target, its instances;
- a scale moves the one target of a settled group; during a deployment (several targets) it changes
  ``instances``, the goal the deployer works towards, and the targets stay as the deployer set them;
- a spec change (update, rollback) does not replace running tasks by itself: the running targets
  stay and the deployer starts a deployment to the new version (Marathon's "every change is a
  deployment"). Two exceptions need no deployment: a change of the instance count alone (the running
  version is scaled), and a group with nothing running (the new version is the target at once);
- ``GroupRolloutChanged`` (the deployer's, through the registry) replaces the targets; a target of 0
  instances that is not the current version is dropped.
"""

from __future__ import annotations

from typing import NamedTuple

from libs.events import model as m
from libs.events.model import VersionTarget
from libs.spec import GroupSpec

#: a group label that sets its share of its service's traffic (SRV weights); default: its instances
WEIGHT_LABEL = "bay.dns/weight"


class Cause(NamedTuple):
    """The last event that changed an aggregate: what a reader acting on it names as its cause, the
    chain it belongs to and the trace it continues."""

    event_id: str = ""
    correlation_id: str = ""
    traceparent: str = ""


NO_CAUSE = Cause()


class Group(NamedTuple):
    """A NamedTuple, not a dataclass: one is built per replayed group event, and a tuple is several
    times cheaper to build (the registry folds hundreds of thousands a second)."""

    spec: GroupSpec  # as last configured (create, update, rollback)
    version: int  # spec version: +1 on create, update, rollback
    aggregate_version: int  # events applied
    created: float
    updated: float
    instances: int
    deleted: bool = False
    cause: Cause = NO_CAUSE
    targets: tuple[VersionTarget, ...] = ()
    deployment: str = ""  # the deployment that set the targets last

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cluster(self) -> str:
        return self.spec.cluster

    @property
    def service(self) -> str:
        return self.spec.service_name

    @property
    def health_checked(self) -> bool:
        return self.spec.health_check is not None

    @property
    def port_protocols(self) -> dict[str, str]:
        """Its named ports' protocols: port name -> "tcp" | "udp"."""
        return {p.name: p.protocol for p in self.spec.ports}

    @property
    def share(self) -> float:
        """Its part of its service's traffic: the ``bay.dns/weight`` label, else its instances."""
        weight = _weight(self.spec.labels.get(WEIGHT_LABEL))
        return weight if weight is not None else float(max(self.instances, 0))

    @property
    def settled(self) -> bool:
        """Runs its current spec only: one target, in service, weighted by task count."""
        t = self.targets
        return len(t) == 1 and t[0].in_service and t[0].weight is None and same_run(t[0].spec, self.spec)

    def target(self, version: int) -> VersionTarget | None:
        for t in self.targets:
            if t.version == version:
                return t
        return None

    def spec_of(self, version: int) -> GroupSpec:
        """The spec tasks of ``version`` run (the current spec for a version it no longer targets)."""
        t = self.target(version)
        return t.spec if t is not None else self.spec

    def checked(self, version: int) -> bool:
        """Whether tasks of that version have a health check (the readiness rule needs it)."""
        return self.spec_of(version).health_check is not None

    def clusters(self) -> frozenset[str]:
        """The clusters its targets run on (two during a migration)."""
        return frozenset(t.spec.cluster for t in self.targets) | {self.spec.cluster}

    def current_spec(self) -> GroupSpec:
        if self.spec.instances == self.instances:
            return self.spec
        return self.spec.model_copy(update={"instances": self.instances})


class ImpossibleEvent(ValueError):
    """An event that cannot follow the aggregate's state (a scale before the group exists)."""


_new = tuple.__new__  # past the NamedTuple's own __new__, one Python call less per event


def same_run(a: GroupSpec, b: GroupSpec) -> bool:
    """Whether tasks of ``a`` are tasks of ``b``: the specs differ in the instance count at most."""
    return a == b or a.model_copy(update={"instances": 0}) == b.model_copy(update={"instances": 0})


def _after_change(group: Group, spec: GroupSpec, version: int) -> tuple[VersionTarget, ...]:
    """The targets after a spec change (see the module's rules)."""
    targets = group.targets
    if group.deleted or not targets or all(t.instances <= 0 for t in targets):
        return (VersionTarget(version, spec, spec.instances),)
    if group.settled and same_run(targets[0].spec, spec):
        return (VersionTarget(targets[0].version, targets[0].spec, spec.instances),)
    return targets


def _rollout(group: Group, event: m.GroupRolloutChanged) -> tuple[VersionTarget, ...]:
    kept = tuple(t for t in event.targets if t.instances > 0 or t.version == group.version)
    return kept or event.targets[:1] or (VersionTarget(group.version, group.spec, 0),)


def apply(group: Group | None, event: m.GroupEvent, at: float, cause: Cause = NO_CAUSE) -> Group:
    """Fold one event into the group; ``at`` is the event's time."""
    agg = (group.aggregate_version if group else 0) + 1
    if type(event) is m.GroupScaled:
        if group is None:
            raise ImpossibleEvent("GroupScaled before GroupCreated")
        targets = group.targets
        if len(targets) == 1:
            t = targets[0]
            targets = (VersionTarget(t.version, t.spec, event.instances, t.in_service, t.weight),)
        return _new(
            Group,
            (group.spec, group.version, agg, group.created, at, event.instances, group.deleted, cause,
             targets, group.deployment),
        )  # fmt: skip
    if isinstance(event, m.GroupCreated):
        targets = (VersionTarget(event.version, event.spec, event.spec.instances),)
        return _new(
            Group, (event.spec, event.version, agg, at, at, event.spec.instances, False, cause, targets, "")
        )
    if group is None:
        raise ImpossibleEvent(f"{type(event).__name__} before GroupCreated")
    if isinstance(event, m.GroupUpdated | m.GroupRolledBack):
        targets = _after_change(group, event.spec, event.version)
        return _new(
            Group,
            (event.spec, event.version, agg, group.created, at, event.spec.instances, False, cause,
             targets, group.deployment),
        )  # fmt: skip
    if isinstance(event, m.GroupRolloutChanged):
        return _new(
            Group,
            (group.spec, group.version, agg, group.created, at, group.instances, group.deleted, cause,
             _rollout(group, event), event.deployment),
        )  # fmt: skip
    if isinstance(event, m.GroupDeleted):
        return _new(
            Group,
            (group.spec, group.version, agg, group.created, at, group.instances, True, cause,
             group.targets, group.deployment),
        )  # fmt: skip
    raise TypeError(f"not a group event: {event!r}")


def recorded(group: Group | None) -> Group:
    """The group after a NothingChanged: one event more, nothing else (its cause stays the last
    event that changed it)."""
    if group is None:
        raise ImpossibleEvent("NothingChanged before GroupCreated")
    return group._replace(aggregate_version=group.aggregate_version + 1)


def _weight(text: str | None) -> float | None:
    """A weight label that is not a non-negative number is ignored (the registry does not know it)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None
