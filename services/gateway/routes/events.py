"""``/v1/events``: the audit trail (a SQL read model) and the live event stream (server-sent events)."""

from __future__ import annotations

from typing import Annotated, Any

import nats.errors
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from libs.errors import FieldViolation, Unavailable, ValidationFailed
from libs.events.subjects import ROOT as EVENT_SUBJECT_ROOT
from services.gateway.audit.query import query_events
from services.gateway.audit.writer import MAX_SEQUENCE
from services.gateway.backends import Backends
from services.gateway.deps import BackendsDep, SettingsDep, Viewer
from services.gateway.models import EventPage
from services.gateway.params import DateTimeParam
from services.gateway.sse import event_stream

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("")
async def list_events(
    _: Viewer,
    backends: BackendsDep,
    aggregate_type: str | None = None,
    aggregate_id: str | None = None,
    event_type: Annotated[str | None, Query(alias="type", description="e.g. GroupScaled")] = None,
    actor: Annotated[str | None, Query(description="who asked: a token's name, or a service")] = None,
    since: DateTimeParam | None = None,
    until: DateTimeParam | None = None,
    after: Annotated[
        int, Query(ge=0, le=MAX_SEQUENCE, description="only events with a greater sequence")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    latest: Annotated[
        bool, Query(description="the last `limit` matching events (oldest first; no next page)")
    ] = False,
) -> EventPage:
    def query() -> list[dict[str, Any]]:
        with Session(backends.engine) as session:
            return query_events(
                session,
                aggregate_type=aggregate_type or None,
                aggregate_id=aggregate_id or None,
                type=event_type or None,
                actor=actor or None,
                since=since,  # a time without a zone is UTC, as every time in Bay
                until=until,
                after=after,
                limit=limit,
                latest=latest,
            )

    try:
        events = await run_in_threadpool(query)
    except SQLAlchemyError as exc:
        raise Unavailable(f"the audit database did not answer: {type(exc).__name__}") from exc
    next_after = events[-1]["sequence"] if len(events) == limit and not latest else None
    return EventPage.model_validate({"events": events, "next_after": next_after})


def subject_filter(subject: str | None) -> str | None:
    """``group.web`` is short for ``bay.ev.group.web``; NATS wildcards (``*``, ``>``) are allowed."""
    if not subject:
        return None
    full = subject if subject.startswith(f"{EVENT_SUBJECT_ROOT}.") else f"{EVENT_SUBJECT_ROOT}.{subject}"
    tokens = full.split(".")
    if any(not t or any(c.isspace() for c in t) for t in tokens) or ">" in tokens[:-1]:
        raise ValidationFailed([FieldViolation("subject", f"{subject!r} is not a subject filter")])
    return full


def resume_point(last_event_id: str | None) -> int | None:
    if last_event_id is None:
        return None
    text = last_event_id.strip()
    # the length first: int() of thousands of digits is refused by Python (and slow before that)
    if not text.isdigit() or len(text) > len(str(MAX_SEQUENCE)) or int(text) > MAX_SEQUENCE:
        raise ValidationFailed(
            [FieldViolation("Last-Event-ID", f"must be an event's sequence number (0 to {MAX_SEQUENCE})")]
        )
    return int(text) + 1


async def _next_sequence(backends: Backends) -> int:
    """Where a stream of only new events starts."""
    if not backends.nats.connected:
        raise Unavailable("NATS is not connected (reconnecting): the event stream cannot be read now")
    try:
        return await backends.events.last_sequence() + 1
    except nats.errors.Error as exc:  # e.g. the connection dropped just now
        raise Unavailable(f"NATS did not answer: {exc}") from exc


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream_events(
    _: Viewer,
    backends: BackendsDep,
    settings: SettingsDep,
    start: Annotated[
        int | None,
        Query(alias="from", ge=0, le=MAX_SEQUENCE, description="first sequence to send (0: the whole log)"),
    ] = None,
    subject: Annotated[str | None, Query(description="e.g. group.web or bay.ev.group.>")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", description="resume after it")] = None,
) -> StreamingResponse:
    """Events as they are appended; ``Last-Event-ID`` (sent by a reconnecting client) wins over
    ``from``; with neither, only events appended from now on."""
    first = resume_point(last_event_id)
    if first is None:
        first = max(start, 1) if start is not None else await _next_sequence(backends)
    body = event_stream(
        backends.events,
        first,
        subject_filter(subject),
        heartbeat=settings.sse_heartbeat_seconds,
        stop=backends.closing,
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
