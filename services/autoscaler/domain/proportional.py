"""The proportional rule, desired = ceil(current x value / target), for one metric at one instant.

Per-task metrics (cpu, memory, custom per task) follow the Kubernetes HPA replica calculation:
- the ratio is the average over ready tasks that have a sample, divided by the target;
- tasks not ready yet, and ready tasks without a sample ("missing"), are set aside first;
- if the ratio says up: missing and not-ready tasks count as using 0, so a scale-up is never inflated
  by tasks that cannot yet take load;
- if the ratio says down: missing tasks count as using exactly the target (100%), and not-ready tasks
  are left out, so a scale-down never rests on data that is not there;
- if that adjustment brings the ratio within tolerance or reverses its direction, nothing changes;
- within tolerance (|ratio - 1| <= tolerance) nothing changes.
Group totals (backlog, custom totals) need ceil(total / target) tasks, with the same tolerance against
the current count.

`need` is the load in tasks (before ceil) that the adjusted samples show, the quantity whose short
window average decides panic: for per-task metrics the sum of ready tasks' values over the target
(missing and not-ready as 0), for totals total / target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.autoscaler.domain.observe import MetricSample, Observation
from services.autoscaler.domain.policy import MetricTarget

WITHIN_TOLERANCE = "within tolerance"
REVERSED = "direction reversed once missing/not-ready tasks were counted"


@dataclass(frozen=True)
class Proposal:
    """value: the per-task average (per-task metrics) or the total; None when there is no data.
    recommendation: the task count this metric asks for (None without data).
    need: load in tasks for the panic window (see module docstring). note: why it held, if it did.
    """

    value: float | None
    recommendation: int | None
    need: float | None
    note: str = ""


NO_DATA = Proposal(None, None, None, "no data")


def ceil(x: float) -> int:
    """Ceiling that ignores float noise: 0.96 / 0.8 x 10 is 12 tasks, not 13."""
    return math.ceil(x - 1e-9)


def propose(metric: MetricTarget, obs: Observation, tolerance: float) -> Proposal:
    sample = obs.samples.get(metric.key)
    if sample is None:
        return NO_DATA
    if metric.is_total:
        return _total(metric, sample, obs.current, tolerance)
    return per_task(sample, obs.ready, obs.current, metric.target, tolerance)


def _total(metric: MetricTarget, sample: MetricSample, current: int, tolerance: float) -> Proposal:
    if sample.total is None or not math.isfinite(sample.total):
        return NO_DATA
    need = max(0.0, sample.total) / metric.target
    if current > 0 and abs(need / current - 1) <= tolerance:
        return Proposal(sample.total, current, need, WITHIN_TOLERANCE)
    return Proposal(sample.total, ceil(need), need)


def per_task(
    sample: MetricSample, ready: frozenset[str], current: int, target: float, tolerance: float
) -> Proposal:
    """HPA's calculation for a per-task metric (see module docstring); recommendations are >= 1."""
    observed: list[float] = []
    missing = 0
    for task in ready:
        v = sample.per_task.get(task)
        if v is None or not math.isfinite(v):
            missing += 1
        else:
            observed.append(max(0.0, v))
    unready = max(0, current - len(ready))
    if not observed:
        return NO_DATA
    used = sum(observed)
    average = used / len(observed)
    need = used / target
    ratio = average / target
    up_with_unready = unready > 0 and ratio > 1
    if not up_with_unready and missing == 0:
        if abs(ratio - 1) <= tolerance:
            return Proposal(average, current, need, WITHIN_TOLERANCE)
        return Proposal(average, max(1, ceil(ratio * len(observed))), need)
    counted = len(observed)
    note = ""
    if missing and ratio < 1:
        used += missing * target
        counted += missing
        note = f"{missing} missing counted at target"
    elif missing and ratio > 1:
        counted += missing
        note = f"{missing} missing counted as 0"
    if up_with_unready:
        counted += unready
        note = ", ".join(filter(None, [note, f"{unready} not ready counted as 0"]))
    new_ratio = used / (target * counted)
    if abs(new_ratio - 1) <= tolerance:
        return Proposal(average, current, need, WITHIN_TOLERANCE)
    if (ratio < 1 < new_ratio) or (ratio > 1 > new_ratio):
        return Proposal(average, current, need, REVERSED)
    rec = max(1, ceil(new_ratio * counted))
    if (new_ratio < 1 and rec > current) or (new_ratio > 1 and rec < current):
        return Proposal(average, current, need, REVERSED)
    return Proposal(average, rec, need, note)
