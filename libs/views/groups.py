"""The one fold of groups: each group as the registry's events say it is.

A group's spec is :class:`libs.spec.GroupSpec` (defaults and the service name are the spec's own);
``instances`` is kept apart from the spec because scaling is frequent and is not configuration, so
folding a scale event does not copy the spec. Deleted groups stay as tombstones (``deleted``): a group
created again with the same name goes on from the version its tombstone holds.
"""

from __future__ import annotations

from typing import NamedTuple

from libs.events import model as m
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

    def current_spec(self) -> GroupSpec:
        if self.spec.instances == self.instances:
            return self.spec
        return self.spec.model_copy(update={"instances": self.instances})


class ImpossibleEvent(ValueError):
    """An event that cannot follow the aggregate's state (a scale before the group exists)."""


_new = tuple.__new__  # past the NamedTuple's own __new__, one Python call less per event


def apply(group: Group | None, event: m.GroupEvent, at: float, cause: Cause = NO_CAUSE) -> Group:
    """Fold one event into the group; ``at`` is the event's time."""
    agg = (group.aggregate_version if group else 0) + 1
    if type(event) is m.GroupScaled:
        if group is None:
            raise ImpossibleEvent("GroupScaled before GroupCreated")
        return _new(
            Group, (group.spec, group.version, agg, group.created, at, event.instances, group.deleted, cause)
        )
    if isinstance(event, m.GroupCreated):
        return _new(Group, (event.spec, event.version, agg, at, at, event.spec.instances, False, cause))
    if group is None:
        raise ImpossibleEvent(f"{type(event).__name__} before GroupCreated")
    if isinstance(event, m.GroupUpdated | m.GroupRolledBack):
        return _new(
            Group, (event.spec, event.version, agg, group.created, at, event.spec.instances, False, cause)
        )
    if isinstance(event, m.GroupDeleted):
        return _new(Group, (group.spec, group.version, agg, group.created, at, group.instances, True, cause))
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
