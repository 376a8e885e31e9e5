"""Events as JSON-ready dicts: one rendering for REST, server-sent events, the CLI and the audit table."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime
from typing import Any

import bay.v1
from bay.v1 import envelope_pb2
from google.protobuf import json_format

from libs.envelope import payload_of
from libs.eventlog.port import Record

# every generated module, so any event type (today's and those later services add) decodes by name
for _mod in pkgutil.iter_modules(bay.v1.__path__):
    if _mod.name.endswith("_pb2"):
        importlib.import_module(f"bay.v1.{_mod.name}")


def envelope_time(env: envelope_pb2.Envelope) -> datetime:
    return datetime.fromtimestamp(env.time.seconds + env.time.nanos / 1e9, tz=UTC)


def payload_dict(env: envelope_pb2.Envelope) -> dict[str, Any]:
    try:
        msg = payload_of(env)
    except KeyError:  # a type this process does not know: keep what can be said
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
