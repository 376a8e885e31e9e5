"""Reading the audit trail: filters and paging by sequence, for the gateway's history pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from services.gateway.audit.models import AuditEvent
from services.gateway.audit.rows import as_utc, row_event

MAX_LIMIT = 1000


def query_events(
    session: Session,
    *,
    aggregate_type: str | None = None,
    aggregate_id: str | None = None,
    type: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int = 0,
    limit: int = 100,
    latest: bool = False,
) -> list[dict[str, Any]]:
    """Events with ``sequence > after`` and ``since <= time < until``, oldest first.

    Page by passing the last sequence of one page as ``after`` of the next. ``limit`` is capped at
    1000; naive datetimes are taken as UTC (SQLite compares the stored UTC text, so bounds
    are converted to UTC before binding). ``latest``: the last ``limit`` events that match (still
    oldest first), for a page that shows the newest.
    """
    stmt = select(AuditEvent).where(col(AuditEvent.sequence) > after)
    if aggregate_type is not None:
        stmt = stmt.where(AuditEvent.aggregate_type == aggregate_type)
    if aggregate_id is not None:
        stmt = stmt.where(AuditEvent.aggregate_id == aggregate_id)
    if type is not None:
        stmt = stmt.where(AuditEvent.type == type)
    if actor is not None:
        stmt = stmt.where(AuditEvent.actor == actor)
    if since is not None:
        stmt = stmt.where(col(AuditEvent.time) >= as_utc(since))
    if until is not None:
        stmt = stmt.where(col(AuditEvent.time) < as_utc(until))
    order = col(AuditEvent.sequence).desc() if latest else col(AuditEvent.sequence)
    stmt = stmt.order_by(order).limit(max(0, min(limit, MAX_LIMIT)))
    rows = [row_event(row) for row in session.exec(stmt)]
    return rows[::-1] if latest else rows
