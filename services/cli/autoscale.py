"""Autoscaling as the CLI reads and shows it. Pure functions: the flags of ``bay autoscale set`` (and
a policy file) as the REST body, and what ``bay autoscale status`` and ``list`` print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Group as Rows
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from services.cli.errors import CliError, ExitCode
from services.cli.render import short_time
from services.cli.specfile import _BoundedLoader

JSON = dict[str, Any]

METRIC_HELP = "NAME=TARGET[,activation=A][,per_task=false] (a custom metric pushed on NATS)"
PROMETHEUS_HELP = (
    "NAME=TARGET,port=PORT[,path=/metrics][,metric=FAMILY][,label.K=V...][,activation=A][,per_task=false] "
    "(a custom metric scraped from the tasks' PORT)"
)
BACKLOG_HELP = "STREAM/CONSUMER=TARGET[,activation=A][,name=N] (a JetStream consumer's pending + unacked)"


def _number(flag: str, text: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise CliError(f"{flag} {text}: {value!r} is not a number") from None


def _bool(flag: str, text: str, value: str) -> bool:
    if value.lower() in ("true", "yes", "1"):
        return True
    if value.lower() in ("false", "no", "0"):
        return False
    raise CliError(f"{flag} {text}: {value!r} is not true or false")


def _split(flag: str, text: str, usage: str, allowed: set[str]) -> tuple[str, float, dict[str, str]]:
    """``HEAD=TARGET,key=value,...`` as (HEAD, TARGET, {key: value})."""
    first, *rest = text.split(",")
    head, eq, target = first.partition("=")
    if not eq or not head.strip() or not target.strip():
        raise CliError(f"{flag} {text}: give {usage.split('[')[0].split(' (')[0]}", hint=f"{flag} {usage}")
    options: dict[str, str] = {}
    for part in rest:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not (key in allowed or (key.startswith("label.") and "label." in allowed)):
            raise CliError(f"{flag} {text}: unknown option {part.strip()!r}", hint=f"{flag} {usage}")
        options[key] = value.strip()
    return head.strip(), _number(flag, text, target.strip()), options


def _common(flag: str, text: str, metric: JSON, options: dict[str, str]) -> JSON:
    if "activation" in options:
        metric["activation"] = _number(flag, text, options["activation"])
    if "per_task" in options:
        metric["per_task"] = _bool(flag, text, options["per_task"])
    return metric


def parse_metric(text: str) -> JSON:
    """``--metric rps=50``: a custom metric pushed for the group."""
    name, target, options = _split("--metric", text, METRIC_HELP, {"activation", "per_task"})
    metric = {"kind": "custom", "name": name, "target": target, "source": {"pushed": True}}
    return _common("--metric", text, metric, options)


def parse_prometheus(text: str) -> JSON:
    """``--prometheus latency=0.25,port=http,metric=http_latency``: scraped from the tasks."""
    allowed = {"port", "path", "metric", "label.", "activation", "per_task"}
    name, target, options = _split("--prometheus", text, PROMETHEUS_HELP, allowed)
    if not options.get("port"):
        raise CliError(f"--prometheus {text}: give port=PORT (a port name of the group's spec)")
    source: JSON = {"port_name": options["port"], "metric": options.get("metric") or name}
    if options.get("path"):
        source["path"] = options["path"]
    labels = {k.removeprefix("label."): v for k, v in options.items() if k.startswith("label.")}
    if labels:
        source["labels"] = labels
    metric = {"kind": "custom", "name": name, "target": target, "source": {"prometheus": source}}
    return _common("--prometheus", text, metric, options)


def parse_backlog(text: str) -> JSON:
    """``--backlog jobs/worker=100,activation=1``: a JetStream consumer's backlog."""
    head, target, options = _split("--backlog", text, BACKLOG_HELP, {"activation", "name"})
    stream, slash, consumer = head.partition("/")
    if not slash or not stream or not consumer:
        raise CliError(f"--backlog {text}: give STREAM/CONSUMER=TARGET", hint=f"--backlog {BACKLOG_HELP}")
    metric: JSON = {"kind": "backlog", "target": target, "backlog": {"stream": stream, "consumer": consumer}}
    if options.get("name"):
        metric["name"] = options["name"]
    return _common("--backlog", text, metric, options)


def read_policy(path: str, stdin_text: str | None = None) -> JSON:
    """A policy file (YAML or JSON; ``-``: standard input), as ``bay autoscale get -o yaml`` prints it."""
    try:
        text = (stdin_text or "") if path == "-" else Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", ExitCode.USAGE
        ) from exc
    try:
        doc = json.loads(text) if text.lstrip()[:1] == "{" else yaml.load(text, Loader=_BoundedLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise CliError(f"{path}: not valid YAML or JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CliError(f"{path}: a policy is a mapping (min, max, metrics...), not {type(doc).__name__}")
    return doc


def policy_body(
    base: JSON | None = None,
    *,
    min_: int | None = None,
    max_: int | None = None,
    metrics: list[JSON] | None = None,
    up: JSON | None = None,
    down: JSON | None = None,
    tolerance: float | None = None,
    reason: str = "",
) -> JSON:
    """The PUT body: the file's policy (if any) with what the flags say over it; metrics given by
    flags replace the file's. Null behaviours from a file (as ``get`` prints them) are left out."""
    body: JSON = {k: v for k, v in (base or {}).items() if v is not None}
    if min_ is not None:
        body["min"] = min_
    if max_ is not None:
        body["max"] = max_
    if metrics:
        body["metrics"] = metrics
    for key, given in (("up", up), ("down", down)):
        flags = {k: v for k, v in (given or {}).items() if v is not None}  # a flag not given keeps the file's
        merged = {k: v for k, v in {**(body.get(key) or {}), **flags}.items() if v is not None}
        body.pop(key, None)
        if merged:
            body[key] = merged
    if tolerance is not None:
        body["tolerance"] = tolerance
    if reason:
        body["reason"] = reason
    missing = [f"--{k}" for k in ("min", "max") if k not in body] + (
        ["a metric (--cpu, --memory, --metric, --prometheus or --backlog)"] if not body.get("metrics") else []
    )
    if missing:
        raise CliError(f"give {', '.join(missing)} (or -f policy.yaml)")
    return body


# ---- what is shown ----


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def metric_label(m: JSON) -> str:
    name = m.get("name") or m.get("kind", "")
    source = m.get("source") or {}
    if m.get("kind") == "backlog" and m.get("backlog"):
        return f"{name} ({m['backlog']['stream']}/{m['backlog']['consumer']})"
    if source.get("prometheus"):
        return f"{name} (prometheus {source['prometheus'].get('port_name', '')})"
    return str(name)


def policy_line(p: JSON) -> str:
    targets = ", ".join(f"{metric_label(m)} {_num(m.get('target'))}" for m in p.get("metrics") or [])
    return f"{p.get('group', '')}: {p.get('min')}..{p.get('max')} instances on {targets}"


def policies_table(policies: list[JSON]) -> Table:
    table = Table("group", "min", "max", "metrics", box=None, pad_edge=False)
    for p in policies:
        metrics = ", ".join(f"{metric_label(m)}={_num(m.get('target'))}" for m in p.get("metrics") or [])
        table.add_row(str(p.get("group", "")), str(p.get("min", "")), str(p.get("max", "")), metrics)
    return table


def metrics_table(latest: JSON) -> Table:
    table = Table("metric", "value", "target", "recommends", "note", box=None, pad_edge=False)
    for v in latest.get("metrics") or []:
        table.add_row(
            str(v.get("name", "")),
            "no data" if v.get("value") is None else _num(v["value"]),
            _num(v.get("target")),
            _num(v.get("recommendation")),
            str(v.get("note", "")),
        )
    return table


def decisions_table(decisions: list[JSON]) -> Table:
    table = Table("time", "from→to", "rule", "reason", box=None, pad_edge=False)
    for d in decisions:
        table.add_row(
            short_time(d.get("at")),
            f"{d.get('from')}→{d.get('to')}",
            str(d.get("rule", "")),
            str(d.get("reason", "")),
        )
    return table


def status_view(s: JSON) -> RenderableType:
    """For ``bay autoscale status``: bounds and counts, each metric against its target, the last
    decisions, and the line ``now: <reason>``."""
    p = s.get("policy") or {}
    rows: list[RenderableType] = [
        Text(
            f"{p.get('group', '')}: {s.get('current', 0)} instances ({s.get('ready', 0)} ready), "
            f"min {p.get('min')} max {p.get('max')}"
        )
    ]
    latest = s.get("latest")
    if latest:
        wants = latest.get("recommendation")
        rows += [Text(""), metrics_table(latest)]
        if wants is not None:
            rows.append(Text(f"recommendation: {wants}" + (" (panic)" if latest.get("panic") else "")))
    else:
        rows.append(Text("no evaluation yet"))
    decisions = s.get("decisions") or []
    rows += [Text(""), decisions_table(decisions)] if decisions else [Text("no decisions yet")]
    rows.append(Text(f"now: {s.get('reason') or '-'}"))
    return Rows(*rows)
