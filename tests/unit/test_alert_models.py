"""Alertmanager's alerts in Bay's words (``GET /v1/alerts``), the durations Bay writes into
Prometheus' and Alertmanager's configuration, and Alertmanager's lines without the webhook's
secret: pure functions, no server."""

from __future__ import annotations

from pathlib import Path

from services.cli.stack.monitoring import Monitoring, duration
from services.cli.stack.settings import StackSettings
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


def test_alertmanager_lines_lose_the_webhook_secret(tmp_path: Path) -> None:
    """A failed notification's line as Alertmanager 0.25 logs it, with the webhook URL in full."""
    url = "http://127.0.0.1:25150/hook/T0KEN?key=s3cret"
    monitoring = Monitoring(StackSettings(data_dir=tmp_path, alert_webhook_url=url))
    line = (
        "ts=2026-12-04T20:18:05.102Z caller=notify.go:732 level=warn component=dispatcher receiver=webhook "
        f'msg="Notify attempt failed, will retry later" attempts=1 err="Post \\"{url}\\": dial tcp '
        '127.0.0.1:25150: connect: connection refused"'
    )
    shown = monitoring.redact(line)
    assert "T0KEN" not in shown and "s3cret" not in shown
    assert 'Post \\"http://127.0.0.1:25150/<redacted>\\"' in shown and "connection refused" in shown
    assert monitoring.redact("the path alone: /hook/T0KEN?key=s3cret") == "the path alone: /<redacted>"
    assert Monitoring(StackSettings(data_dir=tmp_path)).redact(line) == line
