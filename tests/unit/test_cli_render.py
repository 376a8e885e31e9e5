"""What the CLI prints: tables, event summaries, times (pure; rendered with a recording console)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from services.cli import render


def _text(table: Table) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table)
    return console.export_text()


def _group(name: str, instances: int, **spec: Any) -> dict[str, Any]:
    return {
        "spec": {"name": name, "cluster": "local", "instances": instances, **spec},
        "version": 2,
        "aggregate_version": 5,
        "created": "2024-05-01T10:00:00+00:00",
        "updated": "2024-05-01T10:00:03.123456+00:00",
        "deleted": False,
    }


def test_groups_table_columns_and_rows() -> None:
    text = _text(render.groups_table([_group("web", 3, service="front"), _group("api", 1)]))
    lines = [line.split() for line in text.strip().splitlines()]
    assert lines[0] == ["name", "service", "cluster", "instances", "version", "updated"]
    # sorted by name; the service defaults to the name
    assert lines[1] == ["api", "api", "local", "1", "2", "2024-05-01", "10:00:03"]
    assert lines[2] == ["web", "front", "local", "3", "2", "2024-05-01", "10:00:03"]


def _event(kind: str, data: dict[str, Any], seq: int = 7) -> dict[str, Any]:
    return {
        "sequence": seq,
        "type": kind,
        "aggregate_type": "group",
        "aggregate_id": "web",
        "time": "2024-05-01T10:00:03+00:00",
        "actor": "admin",
        "data": data,
    }


@pytest.mark.parametrize(
    ("kind", "data", "summary"),
    [
        (
            "GroupCreated",
            {"spec": {"name": "web", "cmd": "sleep 100", "instances": 2}, "version": 1},
            "created: cmd sleep 100, 2 instance(s)",
        ),
        ("GroupScaled", {"instances": 5, "previous": 2, "reason": "load"}, "instances 2 -> 5 (load)"),
        # proto JSON leaves zero values out
        ("GroupScaled", {"instances": 3}, "instances 0 -> 3"),
        ("GroupScaled", {"previous": 3}, "instances 3 -> 0"),
        ("GroupRolledBack", {"version": 4, "restored_version": 1}, "rolled back to the spec of version 1"),
        ("GroupDeleted", {"version": 4}, "deleted"),
        ("GroupUpdated", {"spec": {"image": "nginx:1.27"}, "version": 2}, "spec updated: image nginx:1.27"),
        ("ClusterRegistered", {"cluster": {"name": "local", "backend": "local"}}, "cluster local (local)"),
        ("SomethingNew", {"b": 1, "a": "x"}, '{"a":"x","b":1}'),
    ],
)
def test_summaries(kind: str, data: dict[str, Any], summary: str) -> None:
    assert render.summarize(_event(kind, data)) == summary


def test_history_table_shows_spec_versions_only_where_made() -> None:
    events = [
        _event("GroupCreated", {"spec": {"cmd": "x", "instances": 1}, "version": 1}, 3),
        _event("GroupScaled", {"instances": 4, "previous": 1}, 5),
        _event("GroupDeleted", {"version": 1}, 8),
    ]
    rows = [line.split() for line in _text(render.history_table(events)).strip().splitlines()]
    assert rows[0] == ["seq", "time", "type", "version", "actor", "summary"]
    assert rows[1][:6] == ["3", "2024-05-01", "10:00:03", "GroupCreated", "1", "admin"]
    assert rows[2][:5] == ["5", "2024-05-01", "10:00:03", "GroupScaled", "admin"]  # no version
    assert rows[3][:5] == ["8", "2024-05-01", "10:00:03", "GroupDeleted", "admin"]


def test_event_line_is_one_line_with_the_essentials() -> None:
    line = render.event_line(_event("GroupScaled", {"instances": 5, "previous": 2}, 42))
    assert "\n" not in line
    assert line.split()[:6] == ["42", "2024-05-01", "10:00:03", "GroupScaled", "group/web", "admin"]
    assert line.endswith("instances 2 -> 5")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2024-05-01T10:00:03.5+02:00", "2024-05-01 08:00:03"),
        ("2024-05-01T10:00:03Z", "2024-05-01 10:00:03"),
        (0, "1970-01-01 00:00:00"),
        ("", ""),
        (None, ""),
        ("yesterday", "yesterday"),
    ],
)
def test_short_time(value: Any, shown: str) -> None:
    assert render.short_time(value) == shown


def test_parse_aggregate() -> None:
    assert render.parse_aggregate("group/web") == ("group", "web")
    assert render.parse_aggregate("group") == ("group", "")
    assert render.parse_aggregate("") == ("", "")


def test_yaml_keeps_key_order() -> None:
    assert render.as_yaml({"spec": {"name": "web"}, "version": 1}) == "spec:\n  name: web\nversion: 1\n"


def test_stream_subject() -> None:
    assert render.stream_subject("group", "web") == "group.web"
    assert render.stream_subject("group", "") == "group.>"
    assert render.stream_subject("task", "local/t1") == "task.local.t1"
    assert render.stream_subject("", "") == ""


def _task(tid: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "state": "RUNNING",
        "ready": True,
        "healthy": None,
        "health_failures": 0,
        "hostname": "host-1",
        "ports": {"http": 31000},
        "launched_at": "2024-05-01T10:00:00+00:00",
        "message": "",
        "kill_reason": "",
        "exit_code": None,
        **kw,
    }


def test_tasks_table_columns_and_rows() -> None:
    now = render._epoch("2024-05-01T10:05:30+00:00")
    assert now is not None
    tasks = [
        _task("web.a", healthy=True),
        _task("web.b", ready=False, healthy=False, health_failures=2, ports={}),
        _task("web.c", state="KILLED", ready=False, kill_reason="operator (ops)", exit_code=143),
    ]
    rows = [line.split() for line in _text(render.tasks_table(tasks, now)).strip().splitlines()]
    assert rows[0] == ["id", "state", "ready", "host", "ports", "age", "message"]
    assert rows[1] == ["web.a", "RUNNING", "yes/healthy", "host-1", "http=31000", "5m30s"]
    assert rows[2] == ["web.b", "RUNNING", "no/unhealthy(2)", "host-1", "-", "5m30s"]
    assert rows[3][:6] == ["web.c", "KILLED", "no", "host-1", "http=31000", "5m30s"]
    assert " ".join(rows[3][6:]) == "kill: operator (ops); exit 143"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-1, "0s"),
        (42, "42s"),
        (310, "5m10s"),
        (900, "15m"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (2 * 86400 + 4 * 3600, "2d4h"),
    ],
)
def test_age(seconds: float, shown: str) -> None:
    assert render.age(seconds) == shown


def test_status_and_pending_lines() -> None:
    st = {"desired": 5, "ready": 3, "running": 4, "staged": 1, "killing": 0, "pending": {"count": 0}}
    assert render.status_line(st) == "3/5 ready (running 4, staged 1, killing 0)"
    assert render.status_line({**st, "has_health_check": True, "unhealthy": 1}).endswith(", unhealthy 1)")
    versions = [
        {"version": 1, "instances": 3, "running": 3, "ready": 3, "in_service": True},
        {"version": 2, "instances": 2, "running": 1, "ready": 0, "in_service": False},
    ]
    line = render.status_line({**st, "versions": versions})
    assert line.endswith("; v1 3/3, v2 0/2 (not in service)")
    assert ";" not in render.status_line({**st, "versions": versions[:1]})
    assert render.pending_line(st) == ""
    why = {"count": 2, "summary": "2 task(s) found no host: constraint zone==eu on 1 of 1 hosts failed"}
    assert render.pending_line({**st, "pending": why}) == f"pending: {why['summary']}"
    assert render.pending_line({**st, "pending": {"count": 1}}) == "pending: 1 task(s) waiting to be launched"
