"""bay.v1 autoscale messages <-> the domain's policy, decisions and window state.

A policy's metric sources (where custom and backlog samples come from) are the service's business,
not the domain's: the domain's ``MetricTarget.source`` holds only the source's kind ("usage",
"pushed", "prometheus", "backlog"); the service reads the details from the policy message.
Field paths of validation errors are given in the message's words (``metrics.0.target``,
``up.window_seconds``), as the registry's and the deployer's are.
"""

from __future__ import annotations

import re

from bay.v1 import autoscale_pb2
from google.protobuf import message, timestamp_pb2

from libs.errors import FieldViolation
from services.autoscaler.domain import (
    Decision,
    DownBehaviour,
    MetricTarget,
    MetricValue,
    Policy,
    State,
    UpBehaviour,
    validate,
)
from services.autoscaler.domain.policy import FieldError

_UP = (("window_s", "window_seconds"), ("stable_window_s", "stable_window_seconds"),
       ("panic_threshold", "panic_threshold"), ("cooldown_s", "cooldown_seconds"))  # fmt: skip
_DOWN = (("window_s", "window_seconds"), ("max_percent", "max_percent"), ("min_step", "min_step"),
         ("cooldown_s", "cooldown_seconds"))  # fmt: skip
_INDEX = re.compile(r"\[([0-9]+)\]")


def _has(msg: message.Message, name: str) -> bool:
    return msg.HasField(name)


def source_kind(m: autoscale_pb2.MetricTarget) -> str:
    if m.kind in ("cpu", "memory"):
        return "usage"
    if m.kind == "backlog":
        return "backlog"
    return "prometheus" if m.WhichOneof("source") == "prometheus" else "pushed"


def metric_from_pb(m: autoscale_pb2.MetricTarget) -> MetricTarget:
    per_task = m.per_task if m.HasField("per_task") else True
    return MetricTarget(
        kind=m.kind,  # type: ignore[arg-type]  # validate() names a kind that is not one
        target=m.target,
        name=m.name,
        activation=m.activation,
        per_task=per_task,
        source=source_kind(m),
    )


def policy_from_pb(p: autoscale_pb2.AutoscalePolicy) -> Policy:
    up = UpBehaviour(**{ours: getattr(p.up, wire) for ours, wire in _UP if _has(p.up, wire)})
    down = DownBehaviour(**{ours: getattr(p.down, wire) for ours, wire in _DOWN if _has(p.down, wire)})
    kwargs = {"tolerance": p.tolerance} if p.HasField("tolerance") else {}
    return Policy(p.min, p.max, tuple(metric_from_pb(m) for m in p.metrics), up, down, **kwargs)


def resolved_pb(p: autoscale_pb2.AutoscalePolicy) -> autoscale_pb2.AutoscalePolicy:
    """The policy message with every default filled in (what GetPolicy answers)."""
    policy = policy_from_pb(p)
    out = autoscale_pb2.AutoscalePolicy()
    out.CopyFrom(p)
    for ours, wire in _UP:
        setattr(out.up, wire, getattr(policy.up, ours))
    for ours, wire in _DOWN:
        setattr(out.down, wire, getattr(policy.down, ours))
    out.tolerance = policy.tolerance
    for m in out.metrics:
        if m.kind == "custom" and not m.HasField("per_task"):
            m.per_task = True
        if m.kind == "custom" and m.WhichOneof("source") is None:
            m.pushed = True
    return out


def _wire_field(path: str) -> str:
    dotted = _INDEX.sub(r".\1", path)
    head, _, last = dotted.rpartition(".")
    names = dict(_UP) if head == "up" else dict(_DOWN) if head == "down" else {}
    return f"{head}.{names.get(last, last)}" if head else dotted


def source_errors(p: autoscale_pb2.AutoscalePolicy) -> list[FieldError]:
    """What the domain cannot see: the group, and each metric's source."""
    errors: list[FieldError] = []
    if not p.group:
        errors.append(("group", "name the group the policy scales"))
    for i, m in enumerate(p.metrics):
        where = f"metrics.{i}"
        source = m.WhichOneof("source")
        if m.kind == "backlog" and not (m.backlog.stream and m.backlog.consumer):
            errors.append((f"{where}.backlog", "a backlog metric needs a stream and a consumer"))
        if m.kind != "backlog" and m.HasField("backlog"):
            errors.append((f"{where}.backlog", "only a backlog metric has one"))
        if source is not None and m.kind != "custom":
            errors.append((f"{where}.{source}", "only a custom metric has a source"))
        if source == "prometheus":
            prom = m.prometheus
            if not prom.port_name:
                errors.append((f"{where}.prometheus.port_name", "name the task's port to scrape"))
            if not prom.metric:
                errors.append((f"{where}.prometheus.metric", "name the metric to read"))
            if prom.path and not prom.path.startswith("/"):
                errors.append((f"{where}.prometheus.path", "must start with /"))
    return errors


def violations(p: autoscale_pb2.AutoscalePolicy) -> list[FieldViolation]:
    """Every problem of the policy message, each naming its field; empty when it is sound."""
    found = [(_wire_field(f), why) for f, why in validate(policy_from_pb(p))] + source_errors(p)
    return [FieldViolation(f, why) for f, why in found]


# ---- decisions ----


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromNanoseconds(round(seconds * 1e9))
    return out


def decision_to_pb(d: Decision) -> autoscale_pb2.AutoscaleDecision:
    out = autoscale_pb2.AutoscaleDecision(
        at=_ts(d.at), to=d.to, rule=d.rule, reason=d.reason, over_panic=d.over_panic, panic=d.panic
    )
    setattr(out, "from", d.frm)  # "from" is a Python keyword
    for m in d.metrics:
        mv = out.metrics.add(name=m.name, target=m.target, note=m.note)
        if m.value is not None:
            mv.value = m.value
        if m.recommendation is not None:
            mv.recommendation = m.recommendation
    if d.recommendation is not None:
        out.recommendation = d.recommendation
    if d.need is not None:
        out.need = d.need
    return out


def decision_from_pb(p: autoscale_pb2.AutoscaleDecision) -> Decision:
    metrics = tuple(
        MetricValue(
            m.name,
            m.value if m.HasField("value") else None,
            m.target,
            m.recommendation if m.HasField("recommendation") else None,
            m.note,
        )
        for m in p.metrics
    )
    return Decision(
        at=p.at.ToNanoseconds() / 1e9,
        frm=getattr(p, "from"),
        to=p.to,
        rule=p.rule,
        reason=p.reason,
        metrics=metrics,
        recommendation=p.recommendation if p.HasField("recommendation") else None,
        need=p.need if p.HasField("need") else None,
        over_panic=p.over_panic,
        panic=p.panic,
    )


# ---- the windows ----

_TIMES = ("panic_last", "last_up", "last_down", "last_at")


def window_to_pb(s: State) -> autoscale_pb2.AutoscaleWindowState:
    out = autoscale_pb2.AutoscaleWindowState(
        up_keep_seconds=s.up_keep_s,
        down_keep_seconds=s.down_keep_s,
        keep_seconds=s.keep_s,
        highs=[autoscale_pb2.WindowEntry(at=t, value=v) for t, v in s.highs],
        lows=[autoscale_pb2.WindowEntry(at=t, value=v) for t, v in s.lows],
        needs=[autoscale_pb2.WindowEntry(at=t, value=v) for t, v in s.needs],
    )
    for name in _TIMES:
        value = getattr(s, name)
        if value is not None:
            setattr(out, name, value)
    return out


def window_from_pb(p: autoscale_pb2.AutoscaleWindowState) -> State:
    times = {name: getattr(p, name) if _has(p, name) else None for name in _TIMES}
    return State(
        up_keep_s=p.up_keep_seconds,
        down_keep_s=p.down_keep_seconds,
        highs=tuple((e.at, int(e.value)) for e in p.highs),
        lows=tuple((e.at, int(e.value)) for e in p.lows),
        needs=tuple((e.at, e.value) for e in p.needs),
        keep_s=p.keep_seconds,
        **times,
    )
