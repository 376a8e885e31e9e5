"""The audit store contract (memory fake, SQLite, PostgreSQL) and query_events on both databases."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from bay.v1 import group_pb2
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

from libs.eventjson import event_dict
from libs.eventlog.port import Record
from libs.events import EventMeta, make_envelope
from libs.events.subjects import subject_for
from services.gateway.audit.db import init_db, make_engine
from services.gateway.audit.query import MAX_LIMIT, query_events
from services.gateway.audit.sqlstore import SqlAuditStore
from services.gateway.audit.writer import AuditStore, MemoryAuditStore

PG_URL = os.environ.get("BAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


@dataclass
class PostgresDatabase:
    name: str
    url: str
    admin: psycopg.Connection[Any]  # autocommit, on the server's own database


@contextlib.contextmanager
def postgres_database() -> Iterator[PostgresDatabase]:
    """A database of its own (skips the test when PostgreSQL is not reachable), dropped afterwards."""
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL} (set BAY_TEST_POSTGRES_URL): {exc}")
    name = f"bay_audit_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PostgresDatabase(name, make_url(PG_URL).set(database=name).render_as_string(False), admin)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_database() as db:
        yield db.url


def fresh_engine(backend: str, request: pytest.FixtureRequest) -> Engine:
    if backend == "sqlite":
        tmp = request.getfixturevalue("tmp_path")
        eng = make_engine(f"sqlite:///{tmp / 'sub' / 'bay.db'}")  # make_engine makes the directory
    else:
        eng = make_engine(request.getfixturevalue("pg_url"))
        SQLModel.metadata.drop_all(eng)  # this module's tests share the database
    init_db(eng)
    request.addfinalizer(eng.dispose)
    return eng


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return fresh_engine(request.param, request)


Rows = Callable[[], list[tuple[int, str]]]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> tuple[AuditStore, Rows]:
    """A store and a way to read back its (sequence, event id) rows."""
    if request.param == "memory":
        mem = MemoryAuditStore()
        return mem, lambda: sorted((s, r.envelope.event_id) for s, r in mem.rows.items())
    eng = fresh_engine(request.param, request)

    def rows() -> list[tuple[int, str]]:
        with eng.connect() as conn:
            result = conn.execute(text("SELECT sequence, event_id FROM audit_events ORDER BY sequence"))
            return [(int(s), str(e)) for s, e in result]

    # two rows per statement, so a failing batch fails after some of its rows went in
    return SqlAuditStore(eng, "bay-audit", rows_per_statement=2), rows


def event(
    seq: int,
    *,
    group: str = "web",
    when: datetime | None = None,
    created: bool = False,
    actor: str = "ops",
) -> Record:
    msg: group_pb2.GroupCreated | group_pb2.GroupScaled
    if created:
        msg = group_pb2.GroupCreated(
            spec=group_pb2.GroupSpec(name=group, cmd="sleep 1", instances=1), version=1
        )
    else:
        msg = group_pb2.GroupScaled(instances=seq, previous=seq - 1, reason="load")
    env = make_envelope(
        msg,
        aggregate_type="group",
        aggregate_id=group,
        aggregate_version=seq,
        meta=EventMeta(
            actor=actor,
            correlation_id=f"corr-{seq}",
            causation_id=f"cause-{seq}",
            idempotency_key=f"key-{seq}",
        ),
        now=(when or T0 + timedelta(minutes=seq)).timestamp(),
    )
    return Record(seq, subject_for("group", group), env)


def ids(*records: Record) -> list[tuple[int, str]]:
    return [(r.sequence, r.envelope.event_id) for r in records]


# --- the store contract ---------------------------------------------------------------------------


def test_write_moves_the_cursor(store: tuple[AuditStore, Rows]) -> None:
    s, rows = store
    assert s.cursor() == 0
    batch = [event(1), event(2), event(3)]
    assert s.write(batch) == 3
    assert s.cursor() == 3
    assert rows() == ids(*batch)


def test_an_overlapping_batch_adds_only_the_new_events(store: tuple[AuditStore, Rows]) -> None:
    s, rows = store
    first = [event(1), event(2), event(3)]
    s.write(first)
    again = [event(5), event(2), event(3), event(4)]  # unordered, partly written already
    assert s.write(again) == 5
    assert s.write(first) == 5  # all old: nothing changes
    assert s.write([event(4), event(4)]) == 5
    assert s.cursor() == 5
    assert rows() == ids(*first, event(4), event(5))


def test_an_event_id_seen_before_is_not_recorded_twice(store: tuple[AuditStore, Rows]) -> None:
    s, rows = store
    one = event(1)
    s.write([one])
    copy = Record(2, one.subject, one.envelope)  # an append retried after the duplicate window
    assert s.write([copy, event(3)]) == 3
    assert rows() == ids(one, event(3))


def test_a_failed_batch_leaves_rows_and_cursor_alone(store: tuple[AuditStore, Rows]) -> None:
    s, rows = store
    s.write([event(1), event(2)])
    poisoned = [event(3), event(4), event(5), Record(2**63, "bay.ev.group.web", event(6).envelope)]
    with pytest.raises((OverflowError, DBAPIError)):  # the sequence does not fit a BIGINT
        s.write(poisoned)
    assert s.cursor() == 2
    assert rows() == ids(event(1), event(2))
    assert s.write([event(3)]) == 3  # and the store still works


# --- query_events ---------------------------------------------------------------------------------


def fill(engine: Engine, records: list[Record]) -> None:
    SqlAuditStore(engine).write(records)


def test_rows_read_back_exactly_as_event_dict(engine: Engine) -> None:
    records = [event(1, created=True), event(2), event(3, group="api", created=True)]
    fill(engine, records)
    with Session(engine) as session:
        got = query_events(session)
    assert got == [event_dict(r.sequence, r.subject, r.envelope) for r in records]
    assert got[0]["time"] == (T0 + timedelta(minutes=1)).isoformat()
    assert got[0]["data"]["spec"]["name"] == "web"


def test_filters_by_aggregate_and_type(engine: Engine) -> None:
    fill(
        engine, [event(1, created=True), event(2), event(3, group="api", created=True), event(4, group="api")]
    )
    with Session(engine) as session:
        assert [e["sequence"] for e in query_events(session, aggregate_id="api")] == [3, 4]
        assert [e["sequence"] for e in query_events(session, aggregate_type="group")] == [1, 2, 3, 4]
        assert query_events(session, aggregate_type="task") == []
        assert [e["sequence"] for e in query_events(session, type="GroupCreated")] == [1, 3]
        both = query_events(session, aggregate_type="group", aggregate_id="web", type="GroupScaled")
        assert [e["sequence"] for e in both] == [2]


def test_filters_by_time_in_any_zone(engine: Engine) -> None:
    fill(engine, [event(i) for i in range(1, 7)])  # at T0 + i minutes
    plus2 = timezone(timedelta(hours=2))
    with Session(engine) as session:
        since = (T0 + timedelta(minutes=2)).astimezone(plus2)  # the same instant, written in +02:00
        until = T0 + timedelta(minutes=5)
        assert [e["sequence"] for e in query_events(session, since=since, until=until)] == [2, 3, 4]
        naive = (T0 + timedelta(minutes=6)).replace(tzinfo=None)  # taken as UTC
        assert [e["sequence"] for e in query_events(session, since=naive)] == [6]
        assert [e["sequence"] for e in query_events(session, until=T0 + timedelta(minutes=1))] == []


def test_pages_by_sequence_and_caps_the_limit(engine: Engine) -> None:
    fill(engine, [event(i, group=f"g{i % 3}") for i in range(1, MAX_LIMIT + 11)])
    with Session(engine) as session:
        pages: list[int] = []
        after = 0
        while page := query_events(session, aggregate_id="g1", after=after, limit=100):
            assert len(page) <= 100
            pages += [e["sequence"] for e in page]
            after = page[-1]["sequence"]
        assert pages == [i for i in range(1, MAX_LIMIT + 11) if i % 3 == 1]
        assert len(query_events(session, limit=10 * MAX_LIMIT)) == MAX_LIMIT
        assert [e["sequence"] for e in query_events(session, after=MAX_LIMIT + 8)] == [
            MAX_LIMIT + 9,
            MAX_LIMIT + 10,
        ]
        assert query_events(session, limit=0) == []
