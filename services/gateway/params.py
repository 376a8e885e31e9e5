"""Query and header parameters whose form the gateway checks: each is stated once, here, for both the
check and the OpenAPI document, so that a client generated from the document sends only what the
gateway takes and the gateway takes everything the document allows."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, WithJsonSchema

#: a task's states (the scheduler's ``TaskState``: Mesos' words, which the local backend uses too)
TaskStateName = Literal[
    "STAGING", "STARTING", "RUNNING", "KILLING", "FINISHED", "FAILED",
    "KILLED", "ERROR", "LOST", "DROPPED", "UNREACHABLE", "GONE", "GONE_BY_OPERATOR", "UNKNOWN",
]  # fmt: skip

#: a task's two outputs, as every scheduler's TaskLogs names them (one task's log and a group's)
LogStreamName = Literal["stdout", "stderr"]

#: ISO 8601 / RFC 3339 date and time; the seconds and the offset may be left out (then it is UTC, as
#: every time in Bay). Pydantic alone would also take a number of seconds since 1970 ("0.5") or a
#: bare date, which ``format: date-time`` does not allow.
DATE_TIME_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?$"
)

#: what ``services.gateway.deps.command_options`` takes in ``If-Match``: ``*``, or a group version
#: (1 or more) bare, quoted or as a weak ETag (``3``, ``"3"``, ``W/"3"``); an empty value is refused
IF_MATCH_RE = r'^\s*(\*|(W/)?"*[0-9]*[1-9][0-9]*"*)\s*$'

#: ... and in ``Idempotency-Key``: 1 to 200 characters once surrounding blanks are dropped
IDEMPOTENCY_KEY_RE = r"^\s*\S(.{0,198}\S)?\s*$"


def _date_time_text(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(DATE_TIME_RE, value):
        raise ValueError(f"must be a date and time such as 2024-05-01T12:00:00Z, not {value!r}")
    return value


DateTimeParam = Annotated[
    datetime,
    BeforeValidator(_date_time_text),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": DATE_TIME_RE,
            "description": "RFC 3339, e.g. 2024-05-01T12:00:00Z; without an offset: UTC",
        }
    ),
]
