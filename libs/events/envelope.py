"""The envelope rules, in one place (protos/bay/v1/envelope.proto says what each field means).

- ``aggregate_version``: 1 for an aggregate's first event, then +1; :func:`make_envelope` refuses 0.
- ``time``: when it happened, given by the writer (its clock); never left at the epoch.
- ``correlation_id``: the request that started a chain, carried to every event the chain causes.
- ``causation_id``: what caused this event: for the first event of a chain, the command (its
  correlation id); after that, the event before it (a TaskLaunched names the GroupScaled behind it).
  :meth:`EventMeta.caused_by` gives the meta of an event caused by another.
- ``event_id``: a UUID, also the append's ``Nats-Msg-Id``; derived from the idempotency key when the
  command has one, so a retried command's events are dropped as duplicates by JetStream.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from bay.v1 import envelope_pb2
from google.protobuf import message

__all__ = ["EventMeta", "event_id_for", "make_envelope"]

_IDEMPOTENCY_NS = uuid.UUID("7f1d3c52-9a53-4c57-b3a0-2d1c3e8b6a10")


@dataclass(frozen=True)
class EventMeta:
    """Who and why: the part of an envelope a command handler supplies."""

    actor: str = "anonymous"
    correlation_id: str = ""
    causation_id: str = ""
    idempotency_key: str = ""
    #: with an idempotency key: the request it stands for (the command's name, a digest of the rest)
    command_name: str = ""
    request_digest: str = ""

    @classmethod
    def command(cls, actor: str, correlation_id: str | None = "", idempotency_key: str = "") -> EventMeta:
        """The first event of a chain: caused by the command itself, whose id is the correlation id
        (a new one when the caller gave none)."""
        correlation = correlation_id or str(uuid.uuid4())
        return cls(actor, correlation, correlation, idempotency_key)

    def for_request(self, command: str, request_digest: str) -> EventMeta:
        """The same meta, naming the request its idempotency key was given for."""
        return replace(self, command_name=command, request_digest=request_digest)

    def caused_by(self, event_id: str, correlation_id: str = "") -> EventMeta:
        """The meta of an event that ``event_id`` caused, in that event's chain."""
        # built directly, not with dataclasses.replace: a scheduler makes thousands a second
        return EventMeta(
            self.actor,
            correlation_id or self.correlation_id or event_id,
            event_id,
            self.idempotency_key,
            self.command_name,
            self.request_digest,
        )


def event_id_for(aggregate_type: str, aggregate_id: str, meta: EventMeta, index: int = 0) -> str:
    if meta.idempotency_key:
        name = f"{aggregate_type}/{aggregate_id}/{meta.idempotency_key}/{index}"
        return str(uuid.uuid5(_IDEMPOTENCY_NS, name))
    return str(uuid.uuid4())


def make_envelope(
    event: message.Message,
    *,
    aggregate_type: str,
    aggregate_id: str,
    aggregate_version: int,
    meta: EventMeta,
    now: float | None = None,
    index: int = 0,
    event_id: str = "",
) -> envelope_pb2.Envelope:
    """An event's envelope; ``now`` is when it happened (unix seconds; default: this moment)."""
    if aggregate_version < 1:
        raise ValueError(f"aggregate_version of a {aggregate_type} event must be 1 or more")
    if now is None:
        now = time.time()
    elif now <= 0:
        raise ValueError(f"the time of a {aggregate_type} event must be a moment, not {now}")
    env = envelope_pb2.Envelope(
        event_id=event_id or event_id_for(aggregate_type, aggregate_id, meta, index),
        type=event.DESCRIPTOR.name,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        actor=meta.actor,
        correlation_id=meta.correlation_id,
        causation_id=meta.causation_id,
        idempotency_key=meta.idempotency_key,
        command=meta.command_name,
        request_digest=meta.request_digest,
    )
    env.time.FromNanoseconds(int(now * 1e9))
    env.payload.Pack(event)
    return env
