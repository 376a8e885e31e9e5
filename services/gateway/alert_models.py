"""``GET /v1/alerts``: what Alertmanager says is firing, in Bay's words.

Alertmanager's API v2 answers a list of alerts, each with its labels (``alertname``, and Bay's
rules add ``severity`` and, where the trouble is a group's, ``group``), annotations (``summary``,
``description``) and ``startsAt``. This turns one into :class:`Alert`; the conversion is pure so
that it is tested without an Alertmanager.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

#: most urgent first; any other severity after these, by name
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


class Alert(BaseModel):
    name: str = Field(description="the rule's name (label alertname)")
    severity: str = Field(description="label severity: critical, warning...; empty if the rule sets none")
    group: str | None = Field(description="the group it is about (label group); null: not a group's")
    summary: str = Field(description="annotation summary: one line naming the group or process")
    description: str = Field(description="annotation description: what it means and where to look")
    state: str = Field("active", description="always active: silenced and inhibited alerts are left out")
    starts_at: str = Field(description="when it started firing (RFC 3339)")
    labels: dict[str, str] = Field(description="every label of the alert")


class AlertList(BaseModel):
    configured: bool = Field(description="false: the gateway has no BAY_ALERTMANAGER_URL (alerts is [])")
    alerts: list[Alert]


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def alert_from_api(doc: dict[str, Any]) -> Alert:
    """One alert of Alertmanager's ``GET /api/v2/alerts`` (a gettableAlert)."""
    labels = _strings(doc.get("labels"))
    annotations = _strings(doc.get("annotations"))
    return Alert(
        name=labels.get("alertname", ""),
        severity=labels.get("severity", ""),
        group=labels.get("group") or None,
        summary=annotations.get("summary", ""),
        description=annotations.get("description", ""),
        starts_at=str(doc.get("startsAt", "")),
        labels=labels,
    )


def alerts_from_api(docs: list[Any]) -> list[Alert]:
    """Every alert, the most severe first, then by name, group and start."""
    alerts = [alert_from_api(d) for d in docs if isinstance(d, dict)]
    return sorted(
        alerts,
        key=lambda a: (
            SEVERITY_ORDER.get(a.severity, len(SEVERITY_ORDER)),
            a.severity,
            a.name,
            a.group or "",
            a.starts_at,
        ),
    )
