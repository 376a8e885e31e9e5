"""What the CLI prints: tables, one-line event summaries, YAML/JSON documents. Pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.table import Table

JSON = dict[str, Any]


def short_time(value: Any) -> str:
    """An ISO time (or epoch seconds) as ``YYYY-MM-DD HH:MM:SS`` UTC; anything else as given."""
    if value in (None, ""):
        return ""
    try:
        if isinstance(value, int | float):
            when = datetime.fromtimestamp(value, tz=UTC)
        else:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if when.tzinfo is not None:
                when = when.astimezone(UTC)
        return when.strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return str(value)


def _what(spec: JSON) -> str:
    for key in ("image", "build", "cmd"):
        if spec.get(key):
            text = str(spec[key])
            return f"{key} {text if len(text) <= 40 else text[:39] + '…'}"
    return ""


def summarize(event: JSON) -> str:
    """One line saying what an event changed (proto JSON omits zero values: default them)."""
    data: JSON = event.get("data") or {}
    kind = event.get("type", "")
    if kind == "GroupCreated":
        spec = data.get("spec") or {}
        return f"created: {_what(spec)}, {spec.get('instances', 0)} instance(s)"
    if kind == "GroupUpdated":
        return f"spec updated: {_what(data.get('spec') or {})}"
    if kind == "GroupScaled":
        reason = f" ({data['reason']})" if data.get("reason") else ""
        return f"instances {data.get('previous', 0)} -> {data.get('instances', 0)}{reason}"
    if kind == "GroupRolledBack":
        return f"rolled back to the spec of version {data.get('restored_version', 0)}"
    if kind == "GroupDeleted":
        return "deleted"
    if kind == "NothingChanged":
        return f"{data.get('command', 'a command')}: nothing changed"
    if kind == "ClusterRegistered":
        cluster = data.get("cluster") or {}
        where = f", scheduler {cluster['scheduler_address']}" if cluster.get("scheduler_address") else ""
        return f"cluster {cluster.get('name', '')} ({cluster.get('backend', '')}{where})"
    if kind == "BuildRegistered":
        build = data.get("build") or {}
        runs = build.get("image") or (build.get("artifact") or {}).get("uri", "")
        return f"build {build.get('id', '')}: {runs}"
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= 80 else text[:79] + "…"


def spec_version(event: JSON) -> str:
    """The spec version an event made (create, update, rollback); blank for the others."""
    version = (event.get("data") or {}).get("version")
    return "" if version is None or event.get("type") == "GroupDeleted" else str(version)


def groups_table(groups: list[JSON]) -> Table:
    table = Table("name", "service", "cluster", "instances", "version", "updated", box=None, pad_edge=False)
    for grp in sorted(groups, key=lambda g: str((g.get("spec") or {}).get("name", ""))):
        spec = grp.get("spec") or {}
        table.add_row(
            str(spec.get("name", "")),
            str(spec.get("service") or spec.get("name", "")),
            str(spec.get("cluster", "")),
            str(spec.get("instances", 0)),
            str(grp.get("version", "")),
            short_time(grp.get("updated")),
        )
    return table


def history_table(events: list[JSON]) -> Table:
    table = Table("seq", "time", "type", "version", "actor", "summary", box=None, pad_edge=False)
    for ev in events:
        table.add_row(
            str(ev.get("sequence", "")),
            short_time(ev.get("time")),
            str(ev.get("type", "")),
            spec_version(ev),
            str(ev.get("actor", "")),
            summarize(ev),
        )
    return table


def event_line(event: JSON) -> str:
    """One event per line (for ``bay events``, piped or followed): seq time type aggregate actor summary."""
    aggregate = f"{event.get('aggregate_type', '')}/{event.get('aggregate_id', '')}"
    return (
        f"{event.get('sequence', ''):>6}  {short_time(event.get('time'))}  {event.get('type', ''):<16}  "
        f"{aggregate:<20}  {event.get('actor', ''):<10}  {summarize(event)}"
    )


def _epoch(value: Any) -> float | None:
    """An ISO time (as the REST API sends) as unix seconds; None when absent or unreadable."""
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def age(seconds: float) -> str:
    """``42s``, ``5m10s``, ``3h20m``, ``2d4h``: two units at most, as ``kubectl`` and ``docker ps`` do."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def task_readiness(task: JSON) -> str:
    """``yes`` / ``no``, with the health check's verdict when there is one."""
    ready = "yes" if task.get("ready") else "no"
    healthy = task.get("healthy")
    if healthy is True:
        return f"{ready}/healthy"
    if healthy is False:
        failures = task.get("health_failures") or 0
        return f"{ready}/unhealthy" + (f"({failures})" if failures else "")
    return ready


def _ports(task: JSON) -> str:
    ports = task.get("ports") or {}
    return ",".join(f"{name}={port}" for name, port in ports.items()) or "-"


def _task_message(task: JSON) -> str:
    parts = [str(task["message"])] if task.get("message") else []
    if task.get("kill_reason"):
        parts.append(f"kill: {task['kill_reason']}")
    if task.get("exit_code") is not None:
        parts.append(f"exit {task['exit_code']}")
    text = "; ".join(parts)
    return text if len(text) <= 60 else text[:59] + "…"


def tasks_table(tasks: list[JSON], now: float) -> Table:
    """One row per task; ``age`` counts from the launch."""
    table = Table("id", "state", "ready", "host", "ports", "age", "message", box=None, pad_edge=False)
    for task in tasks:
        launched = _epoch(task.get("launched_at"))
        table.add_row(
            str(task.get("id", "")),
            str(task.get("state", "")),
            task_readiness(task),
            str(task.get("hostname", "")),
            _ports(task),
            age(now - launched) if launched is not None else "",
            _task_message(task),
        )
    return table


def status_line(status: JSON) -> str:
    """The counts of a group's status in one line."""
    line = (
        f"{status.get('ready', 0)}/{status.get('desired', 0)} ready"
        f" (running {status.get('running', 0)}, staged {status.get('staged', 0)}"
        f", killing {status.get('killing', 0)}"
    )
    if status.get("has_health_check"):
        line += f", unhealthy {status.get('unhealthy', 0)}"
    line += ")"
    versions = status.get("versions") or []
    if len(versions) > 1:  # a deployment under way: each version's share
        parts = [
            f"v{v.get('version')} {v.get('ready', 0)}/{v.get('instances', 0)}"
            + ("" if v.get("in_service", True) else " (not in service)")
            for v in versions
        ]
        line += "; " + ", ".join(parts)
    return line


def pending_line(status: JSON) -> str:
    """Why tasks wait (placement, backoff), or empty when none is pending."""
    pending = status.get("pending") or {}
    if not pending.get("count"):
        return ""
    return f"pending: {pending.get('summary') or str(pending['count']) + ' task(s) waiting to be launched'}"


def dns_records_table(records: list[JSON]) -> Table:
    """What the DNS service answers: one row per record (SRV data: priority weight port target)."""
    table = Table("name", "type", "data", "task", box=None, pad_edge=False)
    for rec in records:
        table.add_row(
            str(rec.get("name", "")),
            str(rec.get("type", "")),
            str(rec.get("data", "")),
            str(rec.get("task_id") or "-"),
        )
    return table


def dns_tasks_table(tasks: list[JSON]) -> Table:
    """The service's tasks: answered or not, and why not."""
    table = Table("task", "group", "cluster", "state", "answered", "reason", box=None, pad_edge=False)
    for task in tasks:
        table.add_row(
            str(task.get("id", "")),
            str(task.get("group", "")),
            str(task.get("cluster", "")),
            str(task.get("state", "")),
            "yes" if task.get("answered") else "no",
            str(task.get("reason") or "-"),
        )
    return table


def dns_summary(lookup: JSON) -> str:
    """One line: the service, its groups (with their traffic shares) and how many tasks answer."""
    tasks = lookup.get("tasks") or []
    answered = sum(1 for t in tasks if t.get("answered"))
    shares = [float(g.get("share") or 0) for g in lookup.get("groups") or []]
    total = sum(shares) or 1.0  # a share is a weight: shown as the part of the service's traffic
    groups = ", ".join(
        f"{g.get('name', '')} on {g.get('cluster', '')} ({share / total:.0%})"
        for g, share in zip(lookup.get("groups") or [], shares, strict=True)
    )
    return (
        f"service {lookup.get('service', '')} in {lookup.get('zone', '')}: "
        f"{answered}/{len(tasks)} task(s) answered; groups: {groups or '-'}"
    )


def as_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)


def as_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)


def stream_subject(kind: str, ident: str) -> str:
    """The event stream's subject filter for ``--aggregate`` (``group.web``, ``group.>``, or all)."""
    if not kind:
        return ""
    return f"{kind}.{ident.replace('/', '.')}" if ident else f"{kind}.>"


def parse_aggregate(value: str) -> tuple[str, str]:
    """``group/web`` -> ("group", "web"); ``group`` -> ("group", "")."""
    kind, _, ident = value.partition("/")
    return kind.strip(), ident.strip()


def alerts_table(alerts: list[JSON]) -> Table:
    """What is firing (``bay alerts``): in the order the gateway sends, the most severe first."""
    table = Table("alert", "group", "severity", "since", "summary", box=None, pad_edge=False)
    for alert in alerts:
        table.add_row(
            str(alert.get("name", "")),
            str(alert.get("group") or "-"),
            str(alert.get("severity") or "-"),
            short_time(alert.get("starts_at")),
            str(alert.get("summary", "")),
        )
    return table
