"""The audit store on SQL (SQLite or PostgreSQL): rows and cursor in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Executable, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from libs.errors import Unavailable
from libs.eventlog.port import Record
from services.gateway.audit.db import writing
from services.gateway.audit.models import AuditCursor, AuditEvent
from services.gateway.audit.rows import event_row
from services.gateway.audit.writer import AuditStore

log = logging.getLogger("bay.audit")

EVENTS: Table = AuditEvent.__table__  # type: ignore[attr-defined]
CURSORS: Table = AuditCursor.__table__  # type: ignore[attr-defined]
DIALECTS = ("sqlite", "postgresql")  # ON CONFLICT DO NOTHING is dialect syntax


class SqlAuditStore(AuditStore):
    def __init__(self, engine: Engine, name: str = "bay-audit", *, rows_per_statement: int = 500) -> None:
        if engine.dialect.name not in DIALECTS:
            raise ValueError(f"the audit store supports SQLite and PostgreSQL, not {engine.dialect.name}")
        self.engine = engine
        self.name = name
        self.rows_per_statement = rows_per_statement

    def cursor(self) -> int:
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(CURSORS.c.sequence).where(CURSORS.c.name == self.name)).scalar()
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable(f"audit database unavailable: {exc.orig}") from exc
        return int(found or 0)

    def write(self, batch: Sequence[Record]) -> int:
        rows: dict[int, dict[str, Any]] = {}
        for rec in batch:
            rows.setdefault(rec.sequence, event_row(rec.sequence, rec.subject, rec.envelope))
        try:
            with self.engine.connect() as conn, writing(conn).begin():
                conn.execute(self._insert_new(CURSORS, {"name": self.name, "sequence": 0}))
                cursor = conn.execute(
                    select(CURSORS.c.sequence).where(CURSORS.c.name == self.name).with_for_update()
                ).scalar_one()
                fresh = [rows[s] for s in sorted(rows) if s > cursor]
                if not fresh:
                    return int(cursor)
                inserted = 0
                for i in range(0, len(fresh), self.rows_per_statement):
                    chunk = fresh[i : i + self.rows_per_statement]
                    # the primary key (and the unique event id) make a replayed row a no-op
                    inserted += conn.execute(self._insert_new(EVENTS, chunk)).rowcount
                new = int(fresh[-1]["sequence"])
                conn.execute(update(CURSORS).where(CURSORS.c.name == self.name).values(sequence=new))
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable(f"audit database unavailable: {exc.orig}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable(f"audit database connection lost: {exc.orig}") from exc
            raise
        if inserted < len(fresh):
            log.warning(
                "%d of events %d..%d were already in the audit table (same sequence or event id)",
                len(fresh) - inserted,
                fresh[0]["sequence"],
                new,
            )
        return new

    def _insert_new(self, table: Table, values: dict[str, Any] | list[dict[str, Any]]) -> Executable:
        """INSERT that leaves a row alone when its key is taken (ON CONFLICT DO NOTHING)."""
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        # psycopg's rowcount is only kept when asked for; it tells how many rows were new
        return insert(table).values(values).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
