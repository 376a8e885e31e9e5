"""Events as JSON-ready dicts: one rendering for REST, server-sent events, the CLI and the audit table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bay.v1 import envelope_pb2
from google.protobuf import json_format

from libs.eventlog.port import Record
from libs.events import UndecodableEvent, payload_message


def envelope_time(env: envelope_pb2.Envelope) -> datetime:
    return datetime.fromtimestamp(env.time.seconds + env.time.nanos / 1e9, tz=UTC)


def payload_dict(env: envelope_pb2.Envelope) -> dict[str, Any]:
    try:
        msg = payload_message(env)
    except UndecodableEvent:  # a type this process does not know: keep what can be said
        return {"@type": env.payload.type_url}
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def event_dict(sequence: int, subject: str, env: envelope_pb2.Envelope) -> dict[str, Any]:
    return {
        "sequence": sequence,
        "subject": subject,
        "id": env.event_id,
        "type": env.type,
        "aggregate_type": env.aggregate_type,
        "aggregate_id": env.aggregate_id,
        "aggregate_version": env.aggregate_version,
        "time": envelope_time(env).isoformat(),
        "actor": env.actor,
        "correlation_id": env.correlation_id,
        "causation_id": env.causation_id,
        "idempotency_key": env.idempotency_key,
        "data": payload_dict(env),
    }


def record_dict(rec: Record) -> dict[str, Any]:
    return event_dict(rec.sequence, rec.subject, rec.envelope)
