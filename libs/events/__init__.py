"""The event contract: subjects, typed events, the one decoder, the envelope rules, trace context.

Every reader of the log goes through here: ``decode(record)`` gives an :class:`Event` (where it sits,
its envelope's facts and its typed value) or raises :class:`UndecodableEvent`, which a fold counts and
skips. No service parses another's payloads on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from bay.v1 import envelope_pb2
from google.protobuf import message

from libs.errors import BayError
from libs.events import model, subjects
from libs.events.codec import DECODERS, EVENT_TYPES, PAYLOADS, to_pb
from libs.events.envelope import EventMeta, make_envelope
from libs.events.model import EventData

if TYPE_CHECKING:  # the event log's port imports the subject layout from here
    from libs.eventlog.port import Record

__all__ = [
    "EVENT_TYPES",
    "TRACEPARENT",
    "Event",
    "EventData",
    "EventMeta",
    "UndecodableEvent",
    "decode",
    "make_envelope",
    "model",
    "payload_message",
    "subjects",
    "to_pb",
]


#: the W3C trace context header on the log's messages (see :mod:`libs.events.trace`)
TRACEPARENT = "traceparent"


class UndecodableEvent(BayError):
    """A record that is not an event Bay knows (unknown type, or a payload that does not parse)."""


class Event(NamedTuple):
    """One decoded event. A NamedTuple: one is built per replayed event."""

    sequence: int
    subject: str
    aggregate_id: str
    at: float  # unix seconds: when it happened
    data: EventData
    envelope: envelope_pb2.Envelope  # id, version, actor, correlation and causation
    headers: Mapping[str, str]

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @property
    def correlation_id(self) -> str:
        return self.envelope.correlation_id

    @property
    def traceparent(self) -> str:
        return self.headers.get(TRACEPARENT, "")


_new_event = tuple.__new__


def decode(rec: Record) -> Event:
    env = rec.envelope
    decoder = DECODERS.get(env.type)
    if decoder is None:
        raise UndecodableEvent(f"sequence {rec.sequence}: unknown event type {env.type!r}")
    t = env.time
    at = t.seconds + t.nanos * 1e-9
    try:
        data = decoder(env.payload.value, env.aggregate_id, at)
    except Exception as exc:  # a payload that does not parse, or a value out of its domain
        raise UndecodableEvent(f"sequence {rec.sequence}: {env.type} does not decode: {exc}") from exc
    # tuple.__new__ directly: a NamedTuple's own __new__ is one more Python call per replayed event
    return _new_event(Event, (rec.sequence, rec.subject, env.aggregate_id, at, data, env, rec.headers))


def payload_message(env: envelope_pb2.Envelope) -> message.Message:
    """The payload as its protobuf message (for rendering it as JSON); UndecodableEvent if unknown."""
    cls = _MESSAGES.get(env.type)
    if cls is None:
        raise UndecodableEvent(f"unknown event type {env.type!r}")
    return cls.FromString(env.payload.value)


_MESSAGES: dict[str, type[message.Message]] = {cls.DESCRIPTOR.name: cls for cls in PAYLOADS}
