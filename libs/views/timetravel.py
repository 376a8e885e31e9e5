"""A group as it was at a past point of the log, and its ready count over time.

The log is the truth, so any past state of a group is the shared fold (:class:`PlatformView`) of a
prefix of the log. Only the group's own subjects matter to it (:func:`libs.events.subjects.of_group`:
its events, its tasks' in every cluster, its deployments'), so only those are read
(:meth:`libs.eventlog.EventLog.read_subjects` filters them on the server): going back costs the
group's own history, not the whole log's. A view fed those alone holds exactly the group, its tasks
and its deployments as they were.

A point is a stream sequence (the state after every event up to it) or a time (the state after the
events that happened at or before it; events are read in stream order and the first one later than
the time ends the read, so a writer's clock running a little behind another's cannot reorder them).
A point past the end is the state now.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import NamedTuple

from libs.eventlog import EventLog, Record
from libs.events import subjects
from libs.views import tasks as tv
from libs.views.groups import Group
from libs.views.platform import PlatformView


class Point(NamedTuple):
    """Where to stop: after stream sequence ``sequence``, or after the last event at or before
    ``time`` (unix seconds); neither: now."""

    sequence: int | None = None
    time: float | None = None


class GroupAt(NamedTuple):
    view: PlatformView  # the group's subjects folded up to the point
    name: str
    sequence: int  # the group's last event folded (0: none)
    time: float  # its time (0.0: none)

    @property
    def group(self) -> Group | None:
        """None: the group did not exist yet at the point."""
        return self.view.groups.get(self.name)

    def tasks(self) -> list[tv.Task]:
        """Its tasks at the point, the few ended ones the fold keeps too, oldest launch first."""
        return sorted(self.view.group_tasks(self.name), key=lambda t: (t.launched_at, t.id))


def _at(rec: Record) -> float:
    t = rec.envelope.time
    return t.seconds + t.nanos * 1e-9


def _micros(rec: Record) -> int:
    """The record's time in whole microseconds, rounded down: the point's time a reader is shown
    (RFC 3339 carries microseconds), so that time given back finds the event, and a microsecond
    before it does not."""
    t = rec.envelope.time
    return (t.seconds * 1_000_000_000 + t.nanos) // 1000


async def _records(log: EventLog, name: str, point: Point) -> AsyncGenerator[Record, None]:
    """The group's records up to the point, in order. A time counts to the microsecond (what
    RFC 3339 times carry), so an event's own time, given back, finds that event."""
    until_us = None if point.time is None else round(point.time * 1_000_000)
    async with aclosing(log.read_subjects(subjects.of_group(name), until_seq=point.sequence)) as batches:
        async for batch in batches:
            for rec in batch:
                if until_us is not None and _micros(rec) > until_us:
                    return
                yield rec


async def group_at(log: EventLog, name: str, point: Point = Point()) -> GroupAt:
    """The group, its tasks and its deployments as they were at ``point``."""
    view = PlatformView()
    view.tracks_causes = False  # nobody acts on a past state
    seq, at = 0, 0.0
    async with aclosing(_records(log, name, point)) as records:
        async for rec in records:
            view.fold(rec)
            seq, at = rec.sequence, _micros(rec) / 1_000_000  # the time as a reader is shown it
    return GroupAt(view, name, seq, at)


class ReadyPoint(NamedTuple):
    time: float
    sequence: int
    ready: int  # tasks serving (the readiness rule)
    desired: int  # the group's instance count


class _Counting(PlatformView):
    """A view that keeps its group's ready count as it folds (not recounted per event)."""

    tracks_causes = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.ready: set[str] = set()

    def on_task(self, before: tv.Task | None, after: tv.Task, ev: object) -> None:
        if self.is_ready(after):
            self.ready.add(after.id)
        else:
            self.ready.discard(after.id)

    def on_group(self, before: Group | None, after: Group) -> None:
        # a spec change may add or drop a health check: readiness of every task is asked again
        self.ready = {t.id for t in self.group_tasks(self.name) if self.is_ready(t)}


async def ready_history(log: EventLog, name: str, since: float = 0.0) -> list[ReadyPoint]:
    """Each change of the group's ready or desired count, from ``since`` (unix seconds) on: the
    first point is the state at ``since`` (when the group existed then)."""
    view = _Counting(name)
    out: list[ReadyPoint] = []
    last: tuple[int, int] | None = None
    before: ReadyPoint | None = None
    async with aclosing(_records(log, name, Point())) as records:
        async for rec in records:
            view.fold(rec)
            group = view.groups.get(name)
            if group is None:
                continue
            desired = 0 if group.deleted else group.instances
            now = (len(view.ready), desired)
            point = ReadyPoint(_at(rec), rec.sequence, *now)
            if point.time < since:
                before = point._replace(time=since)
                continue
            if before is not None:
                out.append(before)
                last, before = (before.ready, before.desired), None
            if now != last:
                out.append(point)
                last = now
    if before is not None:
        out.append(before)
    return out
