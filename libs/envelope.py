"""Building and opening event envelopes (protobuf, see protos/bay/v1/envelope.proto)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from bay.v1 import envelope_pb2
from google.protobuf import descriptor_pool, message, message_factory

__all__ = ["EventMeta", "make_envelope", "payload_of"]

# type name -> message class, filled on first sight from the descriptor pool (every imported *_pb2)
# type name -> message class, filled on first sight from the descriptor pool (every imported *_pb2)
_TYPES: dict[str, type[message.Message]] = {}

# Event ids derived from an idempotency key are stable, so a retried command gets the same
# Nats-Msg-Id and JetStream drops the second copy inside its duplicate window.
_IDEMPOTENCY_NS = uuid.UUID("7f1d3c52-9a53-4c57-b3a0-2d1c3e8b6a10")


@dataclass(frozen=True)
class EventMeta:
    """Who and why: the part of an envelope a command handler supplies."""

    actor: str = "anonymous"
    correlation_id: str = ""
    causation_id: str = ""
    idempotency_key: str = ""


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
    index: int = 0,
    now: float | None = None,
) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope(
        event_id=event_id_for(aggregate_type, aggregate_id, meta, index),
        type=event.DESCRIPTOR.name,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        actor=meta.actor,
        correlation_id=meta.correlation_id,
        causation_id=meta.causation_id,
        idempotency_key=meta.idempotency_key,
    )
    env.time.FromNanoseconds(int((time.time() if now is None else now) * 1e9))
    env.payload.Pack(event)
    return env


def payload_of(env: envelope_pb2.Envelope) -> message.Message:
    """The envelope's event as its own message type."""
    cls = _TYPES.get(env.type)
    if cls is None:
        cls = _class_for_url(env.payload.type_url)
        _TYPES[env.type] = cls
    # Any.Unpack would check the type URL again; the type name was checked by the lookup above
    return cls.FromString(env.payload.value)


def _class_for_url(type_url: str) -> type[message.Message]:
    """Any message type whose generated module has been imported (its descriptor is in the pool)."""
    full_name = type_url.rsplit("/", 1)[-1]
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        raise KeyError(f"unknown event type {full_name!r}") from None
    return message_factory.GetMessageClass(desc)
