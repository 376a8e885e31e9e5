"""Writing the scheduler's events: subject, envelope (version, cause, time) and trace context.

Versions: an aggregate's next event is version ``last + 1``. The last is the fold's, or, for an event
appended but not folded yet (a round's launch and a status update of the same task can be in flight
together), the last one handed out here; an append that failed gives its numbers back, so the next
event does not leave a gap.

Trace: events a group's change caused continue the trace of that change, in one span per group and
write (so a scale started at a REST call reaches the TaskLaunched it caused); a task's later events
carry its last event's trace context on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from types import MappingProxyType
from typing import NamedTuple

from bay.v1 import envelope_pb2

from libs.events import TRACEPARENT, EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.events.trace import continued
from libs.views import Cause
from services.scheduler.domain.causes import cause_of
from services.scheduler.domain.state import SchedulerState

ACTOR = "scheduler"
#: a task's own follow-ups, which carry its trace on rather than open a span each (thousands a second)
_FOLLOW_UPS = (m.TaskStatusChanged, m.TaskHealthChanged)
_SCHEDULER = EventMeta(ACTOR)
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Outgoing(NamedTuple):
    subject: str
    envelope: envelope_pb2.Envelope
    headers: Mapping[str, str]


def address_of(cluster: str, event: m.SchedulerEvent) -> tuple[str, str, str]:
    """(subject, aggregate type, aggregate id) of a scheduler event."""
    if isinstance(event, m.PlacementFailed | m.GroupBackoffChanged):
        return subjects.sched(cluster, event.group), subjects.SCHED, event.group
    if isinstance(event, m.FrameworkRegistered):
        return subjects.framework(cluster), subjects.FRAMEWORK, cluster
    return subjects.task(cluster, event.task_id), subjects.TASK, event.task_id


class EventWriter:
    def __init__(self, cluster: str, state: Callable[[], SchedulerState]) -> None:
        self.cluster = cluster
        self._state = state
        self._handed_out: dict[str, int] = {}  # subject -> last version given to an unfolded event

    def prepare(
        self, events: Iterable[m.SchedulerEvent], *, meta: EventMeta | None = None, cause: Cause | None = None
    ) -> list[Outgoing]:
        """Envelopes for events, in order. ``meta`` (an operator's command) starts a new chain; else
        each event is caused by what :func:`cause_of` says, or by ``cause`` when given."""
        state = self._state()
        out: list[Outgoing] = []
        metas: dict[Cause, EventMeta] = {}  # a round's launches share their group's cause
        spans: dict[str, dict[str, str]] = {}  # the trace continued -> the headers carrying it on
        with ExitStack() as stack:
            for event in events:
                subject, kind, ident = address_of(self.cluster, event)
                c = cause if cause is not None else cause_of(state, event)
                parent = c.traceparent
                headers = _NO_HEADERS
                if parent:
                    if isinstance(event, _FOLLOW_UPS):
                        headers = {TRACEPARENT: parent}
                    else:
                        found = spans.get(parent)
                        if found is None:
                            span = continued("scheduler.write", parent, cluster=self.cluster)
                            found = spans[parent] = stack.enter_context(span)
                        headers = found
                if meta is not None:
                    this = meta
                elif c.event_id:
                    this = metas.get(c) or metas.setdefault(
                        c, _SCHEDULER.caused_by(c.event_id, c.correlation_id)
                    )
                else:  # nothing in the log caused it (a framework registration): a chain of its own
                    this = EventMeta.command(ACTOR, str(uuid.uuid4()))
                env = make_envelope(
                    to_pb(event),
                    aggregate_type=kind,
                    aggregate_id=ident,
                    aggregate_version=self._next_version(state, subject, kind, ident),
                    meta=this,
                    now=event.at,
                )
                out.append(Outgoing(subject, env, headers))
        return out

    def _next_version(self, state: SchedulerState, subject: str, kind: str, ident: str) -> int:
        if kind == subjects.TASK:
            task = state.tasks.get(ident)
            folded = task.version if task is not None else 0
        else:
            folded = state.version_of(subject)
        handed = self._handed_out.get(subject, 0)
        version = max(folded, handed) + 1
        self._handed_out[subject] = version
        return version

    def stored(self, items: Iterable[Outgoing]) -> None:
        """The fold has these events: their subjects' versions are the fold's again."""
        for item in items:
            if self._handed_out.get(item.subject, 0) <= item.envelope.aggregate_version:
                self._handed_out.pop(item.subject, None)

    def failed(self, items: Iterable[Outgoing]) -> None:
        """These may not be stored: forget what was handed out for their subjects."""
        for item in items:
            self._handed_out.pop(item.subject, None)
