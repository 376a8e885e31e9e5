"""Events to audit rows and back, so a row reads exactly as :func:`libs.eventjson.event_dict`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bay.v1 import envelope_pb2

from libs.eventjson import envelope_time, payload_dict
from services.gateway.audit.models import AuditEvent


def event_row(sequence: int, subject: str, env: envelope_pb2.Envelope) -> dict[str, Any]:
    """The column values of one event (a dict, ready for a bulk INSERT)."""
    return {
        "sequence": sequence,
        "subject": subject,
        "event_id": env.event_id,
        "type": env.type,
        "aggregate_type": env.aggregate_type,
        "aggregate_id": env.aggregate_id,
        "aggregate_version": env.aggregate_version,
        "time": envelope_time(env),
        "actor": env.actor,
        "correlation_id": env.correlation_id,
        "causation_id": env.causation_id,
        "idempotency_key": env.idempotency_key,
        "data": json.dumps(payload_dict(env), separators=(",", ":")),
    }


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones in its time zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def row_event(row: AuditEvent) -> dict[str, Any]:
    """A stored row in the shape of :func:`libs.eventjson.event_dict`."""
    return {
        "sequence": row.sequence,
        "subject": row.subject,
        "id": row.event_id,
        "type": row.type,
        "aggregate_type": row.aggregate_type,
        "aggregate_id": row.aggregate_id,
        "aggregate_version": row.aggregate_version,
        "time": as_utc(row.time).isoformat(),
        "actor": row.actor,
        "correlation_id": row.correlation_id,
        "causation_id": row.causation_id,
        "idempotency_key": row.idempotency_key,
        "data": json.loads(row.data),
    }
