"""The decision record: what one evaluation saw, what it chose and why.

Each evaluation yields one `Decision`, changed or not; the service keeps them in the log, shows the
latest `reason` as the group's status, and a restarted autoscaler folds them (state.fold) to resume
its windows. `as_record`/`from_record` give the plain dict form for the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricValue:
    """One metric in a decision: its value (per-task average or group total; None without data), the
    target, the count it recommended (None without data) and a note (why it held, how it counted)."""

    name: str
    value: float | None
    target: float
    recommendation: int | None
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """at: the evaluation's time (epoch seconds). frm/to: the task count before and the count chosen.
    rule: what decided ("proportional cpu", "panic", "stabilised (highest of 300 s)", "step limit",
    "at max", "at min", "activation", "scale to zero", or "hold" when nothing changed).
    reason: for status, e.g. "within tolerance", "stabilising until 12:04:31", "cooldown until ...".
    metrics: each metric's value, target and recommendation.
    recommendation: the unstabilised count the metrics asked for, kept in the windows (None: no data,
    nothing enters the windows). need: the load in tasks (largest over metrics) for the panic window.
    over_panic: the panic condition held at this evaluation; panic: in panic after it.
    """

    at: float
    frm: int
    to: int
    rule: str
    reason: str
    metrics: tuple[MetricValue, ...] = ()
    recommendation: int | None = None
    need: float | None = None
    over_panic: bool = False
    panic: bool = False
    changed: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "changed", self.to != self.frm)


def as_record(d: Decision) -> dict[str, Any]:
    return {
        "at": d.at,
        "frm": d.frm,
        "to": d.to,
        "rule": d.rule,
        "reason": d.reason,
        "metrics": [
            {
                "name": m.name,
                "value": m.value,
                "target": m.target,
                "recommendation": m.recommendation,
                "note": m.note,
            }
            for m in d.metrics
        ],
        "recommendation": d.recommendation,
        "need": d.need,
        "over_panic": d.over_panic,
        "panic": d.panic,
        "changed": d.changed,
    }


def from_record(r: dict[str, Any]) -> Decision:
    return Decision(
        at=float(r["at"]),
        frm=int(r["frm"]),
        to=int(r["to"]),
        rule=str(r["rule"]),
        reason=str(r["reason"]),
        metrics=tuple(
            MetricValue(
                str(m["name"]), m["value"], float(m["target"]), m["recommendation"], m.get("note", "")
            )
            for m in r.get("metrics", ())
        ),
        recommendation=r.get("recommendation"),
        need=r.get("need"),
        over_panic=bool(r.get("over_panic", False)),
        panic=bool(r.get("panic", False)),
    )
