"""A model of the Kubernetes HorizontalPodAutoscaler with its default behaviour, for the benchmark.

What it models, as documented for autoscaling/v2 and its controller:
- one sync every 15 s (`--horizontal-pod-autoscaler-sync-period`);
- the replica calculation with tolerance 0.1 and the missing / not-ready rules (the same function
  Bay uses, proportional.per_task, which is HPA's algorithm);
- stabilisation: scale-up window 0 s (the lowest recommendation of the window), scale-down 300 s
  (the highest of the window), applied as clamp(current, lowest-up, highest-down);
- rate limits, default `behavior`: scale-up `selectPolicy: Max` of {100% per 15 s, 4 pods per 15 s},
  scale-down 100% per 15 s; the limit counts from the replicas at the start of the period (current
  minus what was added, or plus what was removed, by scale events younger than the period);
- minReplicas / maxReplicas.
What it leaves out, all of which would make HPA slower, so the comparison favours HPA: the metrics
pipeline's delay (metrics-server scrapes every 15 s and reports a 15-30 s average), the
CPU-initialisation period, and the informer's resync jitter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.autoscaler.domain.observe import Observation
from services.autoscaler.domain.proportional import per_task


@dataclass(frozen=True)
class HpaConfig:
    min: int = 1
    max: int = 100
    target: float = 0.5
    metric: str = "cpu"
    tolerance: float = 0.1
    sync_period_s: float = 15.0
    up_window_s: float = 0.0
    down_window_s: float = 300.0
    up_percent: float = 100.0
    up_pods: int = 4
    up_period_s: float = 15.0
    down_percent: float = 100.0
    down_period_s: float = 15.0


@dataclass
class HpaModel:
    """An engine for sim.simulate: `step(obs, now)` is one HPA sync, every `period_s` seconds."""

    config: HpaConfig = field(default_factory=HpaConfig)
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)  # (time, replicas added; < 0 removed)

    @property
    def period_s(self) -> float:
        return self.config.sync_period_s

    def step(self, obs: Observation, now: float) -> int:
        c = self.config
        current = obs.current
        sample = obs.samples.get(c.metric)
        rec = None
        if sample is not None:
            rec = per_task(sample, obs.ready, current, c.target, c.tolerance).recommendation
        if rec is None:  # HPA keeps the scale when it cannot compute a metric
            return current
        desired = self._stabilise(current, rec, now)
        desired = self._rate_limit(current, desired, now)
        desired = min(max(desired, c.min), c.max)
        if desired != current:
            self.events.append((now, desired - current))
        return desired

    def _stabilise(self, current: int, rec: int, now: float) -> int:
        c = self.config
        up_cut, down_cut = now - c.up_window_s, now - c.down_window_s
        up, down = rec, rec
        for t, r in self.recommendations:
            if t > up_cut:
                up = min(up, r)
            if t > down_cut:
                down = max(down, r)
        keep = now - max(c.up_window_s, c.down_window_s)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > keep]
        self.recommendations.append((now, rec))
        return min(max(current, up), down)

    def _changed_in(self, now: float, period: float, sign: int) -> int:
        return sum(d for t, d in self.events if t > now - period and d * sign > 0) * sign

    def _rate_limit(self, current: int, desired: int, now: float) -> int:
        c = self.config
        if desired > current:
            start = current - self._changed_in(now, c.up_period_s, +1)
            by_percent = math.ceil(start * (1 + c.up_percent / 100))
            limit = max(by_percent, start + c.up_pods)
            return min(desired, max(limit, current))
        if desired < current:
            start = current + self._changed_in(now, c.down_period_s, -1)
            limit = math.ceil(start * (1 - c.down_percent / 100))
            return max(desired, min(limit, current))
        return desired
