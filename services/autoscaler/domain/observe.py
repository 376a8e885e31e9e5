"""What the autoscaler sees of a group at one evaluation: the inputs of `decide`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetricSample:
    """One metric at one instant.

    per_task: task id -> value, or None when the task's sample is missing (an absent id is missing
    too); only ready tasks' values count. total: the group's value, for a group-total metric
    (backlog, custom per_task=False); None when the source gave nothing.
    """

    per_task: Mapping[str, float | None] = field(default_factory=dict)
    total: float | None = None


@dataclass(frozen=True)
class Observation:
    """current: the group's task count now (the instances asked for, started or not).
    ready: ids of the tasks that are ready; the others, up to `current`, are not ready yet.
    samples: by metric name (MetricTarget.key); a metric with no entry has no data this time.
    """

    current: int
    ready: frozenset[str] = frozenset()
    samples: Mapping[str, MetricSample] = field(default_factory=dict)


def uniform(
    current: int,
    ready: int,
    values: Mapping[str, float],
    totals: Mapping[str, float] | None = None,
    ids: Iterable[str] | None = None,
) -> Observation:
    """An observation where each of `ready` tasks carries the same value per metric (tests, simulation)."""
    task_ids = list(ids) if ids is not None else [f"t{i}" for i in range(ready)]
    samples = {name: MetricSample(per_task=dict.fromkeys(task_ids, v)) for name, v in values.items()}
    for name, v in (totals or {}).items():
        samples[name] = MetricSample(total=v)
    return Observation(current=current, ready=frozenset(task_ids), samples=samples)
