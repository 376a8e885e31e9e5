"""The audit writer's pure parts: batch planning, row conversion, settings, engine URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from bay.v1 import group_pb2

from libs.eventjson import event_dict
from libs.events import EventMeta, make_envelope
from services.gateway.audit.batch import plan_batch
from services.gateway.audit.db import make_engine
from services.gateway.audit.models import AuditEvent
from services.gateway.audit.rows import as_utc, event_row, row_event
from services.gateway.audit.settings import AuditSettings


def plan(expected: int, seqs: list[int]) -> tuple[list[int], list[int], list[int], int]:
    p = plan_batch(expected, seqs, lambda s: s)
    return p.stale, p.fresh, p.held, p.next_expected


def test_a_batch_following_the_cursor_is_all_fresh() -> None:
    assert plan(1, [3, 1, 2]) == ([], [1, 2, 3], [], 4)


def test_events_at_or_below_the_cursor_and_second_copies_are_stale() -> None:
    assert plan(4, [2, 3, 4, 4, 5]) == ([2, 3, 4], [4, 5], [], 6)


def test_everything_after_a_gap_is_held() -> None:
    assert plan(4, [3, 4, 6, 7, 5]) == ([3], [4, 5, 6, 7], [], 8)  # reordered, no gap
    assert plan(4, [3, 4, 7, 8]) == ([3], [4], [7, 8], 5)
    assert plan(1, [5, 6]) == ([], [], [5, 6], 1)


def test_planning_past_a_known_hole() -> None:
    assert plan(5, [5, 6]) == ([], [5, 6], [], 7)


def test_a_row_reads_back_as_the_event_dict() -> None:
    env = make_envelope(
        group_pb2.GroupScaled(instances=4, previous=2, reason="cpu"),
        aggregate_type="group",
        aggregate_id="web",
        aggregate_version=7,
        meta=EventMeta(actor="ops", correlation_id="c", causation_id="d", idempotency_key="k"),
        now=1_714_564_800.123456,
    )
    row = AuditEvent(**event_row(9, "bay.ev.group.web", env))
    assert row_event(row) == event_dict(9, "bay.ev.group.web", env)
    row.time = row.time.replace(tzinfo=None)  # as SQLite hands it back
    assert row_event(row)["time"] == event_dict(9, "bay.ev.group.web", env)["time"]


def test_as_utc() -> None:
    instant = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert as_utc(instant.replace(tzinfo=None)) == instant
    shifted = as_utc(instant.astimezone(timezone(timedelta(hours=-5))))
    assert shifted == instant and shifted.utcoffset() == timedelta(0)


def test_settings_default_to_sqlite_in_the_data_dir() -> None:
    s = AuditSettings(data_dir=Path("/srv/bay"), database_url="")
    assert s.database_url == "sqlite:////srv/bay/bay.db"
    relative = AuditSettings(data_dir=Path(".bay"), database_url="")
    assert relative.database_url == f"sqlite:///{Path.cwd() / '.bay' / 'bay.db'}"  # same file from any cwd
    assert (s.audit_durable, s.audit_batch_size) == ("bay-audit", 500)
    assert AuditSettings(database_url="postgresql://u@db/bay").database_url == "postgresql://u@db/bay"


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    engine = make_engine("postgresql://u:secret@db:5432/bay")  # creating an engine does not connect
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.url.password == "secret" and engine.url.database == "bay"
    engine.dispose()
