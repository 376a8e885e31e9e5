"""Alertmanager's alerts in Bay's words (``GET /v1/alerts``), and the durations Bay writes into
Prometheus' and Alertmanager's configuration: pure functions, no server."""

from __future__ import annotations

from services.cli.stack.monitoring import duration
from services.gateway.alert_models import alerts_from_api


def api_alert(name: str, severity: str = "", **labels: str) -> dict[str, object]:
    return {
        "labels": {"alertname": name, **({"severity": severity} if severity else {}), **labels},
        "annotations": {"summary": f"{name} summary"},
        "startsAt": "2026-12-04T20:00:00.000Z",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    }


def test_most_severe_first_then_by_name_and_group() -> None:
    alerts = alerts_from_api(
        [
            api_alert("B", "warning", group="web"),
            api_alert("Z", "odd"),
            api_alert("A", "warning", group="web"),
            api_alert("A", "warning", group="api"),
            api_alert("C", "critical"),
            "not an alert",
        ]
    )
    assert [(a.name, a.group, a.severity) for a in alerts] == [
        ("C", None, "critical"),
        ("A", "api", "warning"),
        ("A", "web", "warning"),
        ("B", "web", "warning"),
        ("Z", None, "odd"),
    ]


def test_missing_fields_are_empty_not_errors() -> None:
    (alert,) = alerts_from_api([{"labels": {"alertname": "X"}}])
    assert alert.model_dump() == {
        "name": "X",
        "severity": "",
        "group": None,
        "summary": "",
        "description": "",
        "state": "active",
        "starts_at": "",
        "labels": {"alertname": "X"},
    }


def test_durations_as_prometheus_reads_them() -> None:
    assert [duration(s) for s in (14400, 300, 90, 15, 1.5, 0.5, 0)] == [
        "4h",
        "5m",
        "90s",
        "15s",
        "1500ms",
        "500ms",
        "0s",
    ]
