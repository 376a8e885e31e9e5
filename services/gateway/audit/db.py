"""Engines for the audit database: SQLite by default, PostgreSQL (psycopg 3) in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlmodel import SQLModel

from services.gateway.audit import models

SQLITE_BEGIN = "sqlite_begin"
_TABLES = [models.AuditEvent.__table__, models.AuditCursor.__table__]  # type: ignore[attr-defined]


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file gets its directory created and WAL journaling."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        # a plain postgresql:// URL means psycopg 3 here, whatever SQLAlchemy's default driver is
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite opens its transactions lazily at the first write, so a SELECT before it would read
    # outside the transaction; turning that off and emitting BEGIN ourselves (below) makes a
    # SQLAlchemy transaction a real SQLite one.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=5000")  # a second writer waits for the lock instead of failing
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the gateway) never wait for the writer
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # a transaction that will write asks for the lock up front (execution option
    # sqlite_begin="IMMEDIATE"): a deferred one that reads first fails when it tries to write after
    # another writer committed, and the busy timeout cannot help it
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(SQLITE_BEGIN, '')}".strip())


def writing(conn: Connection) -> Connection:
    """``conn`` set up so its transactions take SQLite's write lock when they begin."""
    return conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})


def init_db(engine: Engine, *, attempts: int = 3) -> None:
    """Create the audit tables that do not exist yet (no migrations needed so far).

    The gateway and the audit writer both call this at start-up; when they race, the loser's
    CREATE TABLE fails (SQLite: locked, PostgreSQL: already exists) and a second look finds the
    tables there.
    """
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect() as conn, writing(conn).begin():
                SQLModel.metadata.create_all(conn, tables=_TABLES)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == attempts:
                raise
