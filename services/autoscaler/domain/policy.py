"""A group's scaling policy: bounds, metric targets, and how fast it may go up and down.

Plain frozen dataclasses, validated by `validate` (errors name the field, as `("max", "must be >= min")`),
and `clamp`, the one rule that keeps any requested count, the autoscaler's or a person's, inside
`[min, max]`.

Defaults and where they come from:
- `tolerance` 0.1: HPA's default; no change while |value/target - 1| <= 0.1.
- `UpBehaviour.window_s` 6 s and `stable_window_s` 60 s: Knative's panic and stable windows (the
  short one is 10% of the stable one). Outside panic, a rise must hold for the short window (the
  lowest recommendation of the last 6 s wins, as HPA's scale-up stabilisation does), which keeps a
  noisy steady load from stepping up; the short window's average need reaching `panic_threshold`
  (2.0, Knative's 200%) times the ready tasks starts PANIC, which jumps straight to what the latest
  sample needs and forbids any scale-down until `stable_window_s` has passed without the condition.
- `UpBehaviour.cooldown_s` 0 s: a scale-up is never inflated by tasks still starting (they count as
  idle, see decide.py), so nothing is gained by waiting; set it to the metric source's averaging
  window if the source reports averages that lag behind new tasks.
- `DownBehaviour.window_s` 300 s: HPA's scale-down stabilisation (the highest recommendation of the
  window wins). `max_percent` 25 with `min_step` 1 and `cooldown_s` 15: down to `min` in steps, at
  most a quarter (at least one task) per step, one step per 15 s (HPA's policy period).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

MetricKind = Literal["cpu", "memory", "custom", "backlog"]
KINDS: tuple[str, ...] = ("cpu", "memory", "custom", "backlog")


@dataclass(frozen=True)
class MetricTarget:
    """One metric and the value each task should carry.

    kind: "cpu"/"memory" (utilisation of the task's requested resources, samples per task, 0..1+),
    "custom" (a value per task, or with `per_task=False` a total for the group, e.g. requests/s),
    "backlog" (a JetStream consumer's pending + unacked messages, a total for the group).
    target: the per-task average wanted (a fraction for cpu/memory, units per task otherwise).
    name: unique within a policy, the key of the observation's sample; defaults to the kind.
    activation: for group totals (backlog, custom with per_task=False): the value at or above which
    the metric is active; a group with min 0 goes to zero only when every metric is inactive, and
    wakes from zero when one is active (KEDA's activation threshold; 0 means any value above 0).
    source: opaque to the domain (the service reads it to know where the samples come from).
    """

    kind: MetricKind
    target: float
    name: str = ""
    activation: float = 0.0
    per_task: bool = True
    source: str = ""

    @property
    def key(self) -> str:
        return self.name or self.kind

    @property
    def is_total(self) -> bool:
        """A group total (one value for the group) rather than a sample per task."""
        return self.kind == "backlog" or (self.kind == "custom" and not self.per_task)


@dataclass(frozen=True)
class UpBehaviour:
    window_s: float = 6.0
    stable_window_s: float = 60.0
    panic_threshold: float = 2.0
    cooldown_s: float = 0.0


@dataclass(frozen=True)
class DownBehaviour:
    window_s: float = 300.0
    max_percent: float = 25.0
    min_step: int = 1
    cooldown_s: float = 15.0


@dataclass(frozen=True)
class Policy:
    min: int
    max: int
    metrics: tuple[MetricTarget, ...]
    up: UpBehaviour = field(default_factory=UpBehaviour)
    down: DownBehaviour = field(default_factory=DownBehaviour)
    tolerance: float = 0.1


FieldError = tuple[str, str]


def validate(policy: Policy) -> list[FieldError]:
    """Every problem of the policy, each as (field path, what is wrong); empty when it is sound."""
    errors: list[FieldError] = []
    if policy.min < 0:
        errors.append(("min", "must be >= 0"))
    if policy.max < 1:
        errors.append(("max", "must be >= 1"))
    if policy.max < policy.min:
        errors.append(("max", "must be >= min"))
    if not policy.metrics:
        errors.append(("metrics", "needs at least one metric target"))
    if not 0 <= policy.tolerance < 1:
        errors.append(("tolerance", "must be in [0, 1)"))
    seen: set[str] = set()
    for i, m in enumerate(policy.metrics):
        where = f"metrics[{i}]"
        if m.kind not in KINDS:
            errors.append((f"{where}.kind", f"must be one of {', '.join(KINDS)}"))
        if not (math.isfinite(m.target) and m.target > 0):
            errors.append((f"{where}.target", "must be > 0"))
        if not (math.isfinite(m.activation) and m.activation >= 0):
            errors.append((f"{where}.activation", "must be >= 0"))
        if m.activation and not m.is_total:
            errors.append((f"{where}.activation", "only a group total has one"))
        if m.kind in ("cpu", "memory", "backlog") and not m.per_task:
            errors.append((f"{where}.per_task", f"{m.kind} cannot be a group total"))
        if m.key in seen:
            errors.append((f"{where}.name", f"{m.key!r} is used twice"))
        seen.add(m.key)
    if policy.min == 0 and policy.metrics and not all(m.is_total for m in policy.metrics):
        errors.append(("min", "0 needs every metric to be a group total (one per task cannot wake it)"))
    up, down = policy.up, policy.down
    if up.window_s <= 0:
        errors.append(("up.window_s", "must be > 0"))
    if up.stable_window_s < up.window_s:
        errors.append(("up.stable_window_s", "must be >= up.window_s"))
    if up.panic_threshold <= 1:
        errors.append(("up.panic_threshold", "must be > 1"))
    if up.cooldown_s < 0:
        errors.append(("up.cooldown_s", "must be >= 0"))
    if down.window_s < 0:
        errors.append(("down.window_s", "must be >= 0"))
    if not 0 < down.max_percent <= 100:
        errors.append(("down.max_percent", "must be in (0, 100]"))
    if down.min_step < 1:
        errors.append(("down.min_step", "must be >= 1"))
    if down.cooldown_s < 0:
        errors.append(("down.cooldown_s", "must be >= 0"))
    return errors


AT_MIN = "at min"
AT_MAX = "at max"


@dataclass(frozen=True)
class Clamped:
    count: int
    limit: str  # "" inside the bounds, else AT_MIN or AT_MAX


def clamp(policy: Policy, requested: int) -> Clamped:
    """`requested` brought into [min, max]; `limit` says which bound stopped it, if one did."""
    if requested > policy.max:
        return Clamped(policy.max, AT_MAX)
    if requested < policy.min:
        return Clamped(policy.min, AT_MIN)
    return Clamped(requested, "")
