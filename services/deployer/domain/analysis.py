"""Analysis: thresholds on what the platform knows about the new version.

Metrics: ``failed_tasks`` and ``restarts`` (new-version tasks that failed / ended on their own since
the deployment began), ``ready_fraction`` (ready new tasks over the new target), ``cpu`` and ``mem``
(the new tasks' use over their limits, 0..1, from the usage samples since the analysis began), and
``custom:<name>`` (samples on ``bay.metric.<group>.<name>`` since then). The first three always have
a value; the others may have none yet: a threshold without data is not a pass. The analysis waits
for its whole duration; at the end a threshold still without data fails it, unless ``no_data`` is
``pass`` ("fail" and the default "wait" both fail then). A value that breaks a threshold fails it at
once.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from libs.events import model as m

OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip


class MetricSource(Protocol):
    """Samples the deployer heard (a port: a fake in tests, NATS subscriptions in the service)."""

    def value(self, group: str, metric: str, task_ids: frozenset[str], since: float) -> float | None:
        """The mean of ``metric`` (cpu | mem | custom:<name>) since ``since``; None: no sample."""


class NoMetrics:
    def value(self, group: str, metric: str, task_ids: frozenset[str], since: float) -> float | None:
        return None


@dataclass(frozen=True)
class Verdict:
    outcome: str  # pass | fail | wait
    message: str = ""


def evaluate(analysis: m.Analysis, values: Mapping[str, float | None], started: float, now: float) -> Verdict:
    missing = []
    for t in analysis.thresholds:
        check = OPS.get(t.op)
        if check is None:
            return Verdict("fail", f"unknown operator {t.op!r} for {t.metric}")
        value = values.get(t.metric)
        if value is None:
            missing.append(t.metric)
        elif not check(value, t.value):
            return Verdict("fail", f"{t.metric} = {value:g}, wanted {t.op} {t.value:g}")
    if now < started + analysis.seconds:
        return Verdict("wait", f"no data yet for {', '.join(missing)}" if missing else "observing")
    if missing and analysis.no_data != "pass":
        return Verdict("fail", f"no data for {', '.join(missing)} in {analysis.seconds:g}s")
    return Verdict("pass", "thresholds met")
