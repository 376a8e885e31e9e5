"""Strategy defaults and Marathon's upgrade bounds.

Defaults (a Strategy field left unset): minimum_health_capacity and maximum_over_capacity from the
group's ``upgrade_strategy`` (Marathon's 1.0 and 1.0); ``min_ready_seconds`` 2 s (a new task counts
once it has been ready that long: long enough to see a task that crashes right after its first good
check, short enough that a 100-task roll stays within seconds); ``progress_deadline_seconds`` 600;
``scale_down_delay_seconds`` 30 (blue-green).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from libs.events import model as m
from libs.spec import GroupSpec

MIN_READY_SECONDS = 2.0
PROGRESS_DEADLINE_SECONDS = 600.0
SCALE_DOWN_DELAY_SECONDS = 30.0
KINDS = frozenset({"rolling", "recreate", "canary", "blue-green", "migration"})


def resolve(strategy: m.Strategy | None, spec: GroupSpec, migrating: bool = False) -> m.Strategy:
    """The strategy with every default filled in; a move to another cluster is a migration."""
    s = strategy or m.Strategy()
    up = spec.upgrade_strategy
    return replace(
        s,
        kind="migration" if migrating else (s.kind or "rolling"),
        minimum_health_capacity=_or(s.minimum_health_capacity, up.minimum_health_capacity),
        maximum_over_capacity=_or(s.maximum_over_capacity, up.maximum_over_capacity),
        min_ready_seconds=_or(s.min_ready_seconds, MIN_READY_SECONDS),
        progress_deadline_seconds=_or(s.progress_deadline_seconds, PROGRESS_DEADLINE_SECONDS),
        scale_down_delay_seconds=_or(s.scale_down_delay_seconds, SCALE_DOWN_DELAY_SECONDS),
    )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass(frozen=True)
class Bounds:
    min_ready: int  # never fewer ready
    max_running: int  # never more running


def bounds(n: int, strategy: m.Strategy) -> Bounds:
    """min_ready = ceil(n * minimum_health_capacity), max_running = floor(n * (1 +
    maximum_over_capacity)). When both forbid any progress (capacity 1 and no surge: no old task may
    stop, no new one may start), one task over is allowed, as Marathon does."""
    mhc = strategy.minimum_health_capacity if strategy.minimum_health_capacity is not None else 1.0
    moc = strategy.maximum_over_capacity if strategy.maximum_over_capacity is not None else 1.0
    min_ready = min(n, math.ceil(round(n * mhc, 9)))
    max_running = max(n, math.floor(round(n * (1 + moc), 9)))
    if n > 0 and min_ready >= n and max_running <= n:
        max_running = n + 1
    return Bounds(min_ready, max_running)


def canary_count(n: int, step: m.CanaryStep) -> int:
    """Canary tasks for a share (ceil(n * share)) or a weight (ceil(n * weight / 100)): at least one,
    at most n, so a canary of a 3-task group at 10% is one task, not zero."""
    value = step.value or 0.0
    raw = n * value if step.kind == "share" else n * value / 100.0
    return max(1, min(max(n, 1), math.ceil(round(raw, 9))))
