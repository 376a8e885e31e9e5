"""A small world to run an autoscaling engine against a recorded load trace (benchmark and tests).

The world: a group of tasks; a task asked for at t is ready at t + start_latency (a scale-down removes
tasks still starting first, then ready ones, at once). The load is a trace of (t, demand) held until
the next sample; `demand` is the group's load in the metric's unit summed over tasks, so each ready
task shows demand / ready (a load balancer spreading evenly), or for a group-total metric the
observation carries the demand itself. An engine is evaluated every `engine.period_s` seconds;
`simulate` returns the ready count at each tick.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.autoscaler.domain.decide import step
from services.autoscaler.domain.observe import MetricSample, Observation
from services.autoscaler.domain.policy import Policy
from services.autoscaler.domain.record import Decision
from services.autoscaler.domain.state import State

Trace = Sequence[tuple[float, float]]


class Engine(Protocol):
    @property
    def period_s(self) -> float: ...

    def step(self, obs: Observation, now: float) -> int: ...


@dataclass
class BayEngine:
    """Bay's decide + fold as an engine, evaluated every `period_s` (1 s, the service's tick)."""

    policy: Policy
    period_s: float = 1.0
    state: State = field(init=False)
    decisions: list[Decision] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = State.initial(self.policy)

    def step(self, obs: Observation, now: float) -> int:
        d, self.state = step(self.policy, self.state, obs, now)
        self.decisions.append(d)
        return d.to


def demand_at(trace: Trace, t: float) -> float:
    value = trace[0][1]
    for ts, v in trace:
        if ts > t:
            break
        value = v
    return value


def step_trace(before: float, after: float, at: float, start: float = 0.0) -> list[tuple[float, float]]:
    """A load of `before` from `start`, `after` from `at` on."""
    return [(start, before), (at, after)]


@dataclass(frozen=True)
class Point:
    t: float
    desired: int
    ready: int


def simulate_counts(
    engine: Engine,
    trace: Trace,
    start_latency: float,
    tick: float = 1.0,
    *,
    initial: int = 10,
    until: float | None = None,
    metric: str = "cpu",
    total: bool = False,
    noise: float = 0.0,
    seed: int = 0,
) -> list[Point]:
    """The desired and ready counts at every tick from the trace's first sample to `until`."""
    rng = random.Random(seed)
    t0 = trace[0][0]
    end = until if until is not None else trace[-1][0] + 600.0
    tasks: list[tuple[str, float]] = [(f"t{i}", float("-inf")) for i in range(initial)]
    made = initial
    next_eval = t0
    points: list[Point] = []
    k = 0
    while (t := t0 + k * tick) <= end + 1e-9:
        k += 1
        if t + 1e-9 >= next_eval:
            next_eval += engine.period_s
            ready = [name for name, at in tasks if at <= t]
            load = demand_at(trace, t) * (1 + noise * rng.uniform(-1, 1))
            if total:
                sample = MetricSample(total=load)
            else:
                each = load / len(ready) if ready else 0.0
                sample = MetricSample(per_task={name: each for name in ready})
            obs = Observation(current=len(tasks), ready=frozenset(ready), samples={metric: sample})
            desired = engine.step(obs, t)
            add = desired - len(tasks)
            if add > 0:
                tasks += [(f"t{made + i}", t + start_latency) for i in range(add)]
                made += add
            while len(tasks) > desired:
                starting = [i for i, (_, at) in enumerate(tasks) if at > t]
                tasks.pop(starting[-1] if starting else len(tasks) - 1)
        points.append(Point(t, len(tasks), sum(1 for _, at in tasks if at <= t)))
    return points


def simulate(
    engine: Engine,
    trace: Trace,
    start_latency: float,
    tick: float = 1.0,
    *,
    initial: int = 10,
    until: float | None = None,
    metric: str = "cpu",
    total: bool = False,
    noise: float = 0.0,
    seed: int = 0,
) -> list[tuple[float, int]]:
    """(t, ready tasks) at each tick: what serves the load. Arguments as simulate_counts."""
    points = simulate_counts(
        engine,
        trace,
        start_latency,
        tick,
        initial=initial,
        until=until,
        metric=metric,
        total=total,
        noise=noise,
        seed=seed,
    )
    return [(p.t, p.ready) for p in points]


def time_to_reach(series: Sequence[tuple[float, int]], n: int, since: float = 0.0) -> float | None:
    """Seconds from `since` until the series first shows at least n, None if it never does."""
    for t, count in series:
        if t >= since and count >= n:
            return t - since
    return None


@dataclass(frozen=True)
class Race:
    """Seconds from `since` until each engine had `n` ready tasks (None: never), and both series."""

    bay_s: float | None
    hpa_s: float | None
    bay: list[tuple[float, int]]
    hpa: list[tuple[float, int]]

    @property
    def ratio(self) -> float | None:
        """How many times faster Bay got there than HPA."""
        if self.bay_s is None or self.hpa_s is None or self.bay_s == 0:
            return None
        return self.hpa_s / self.bay_s


def race(
    bay: Engine,
    hpa: Engine,
    trace: Trace,
    start_latency: float,
    n: int,
    *,
    since: float = 0.0,
    tick: float = 1.0,
    initial: int = 10,
    until: float | None = None,
) -> Race:
    """Both engines over the same trace and task start latency, for the benchmark's side-by-side."""
    b = simulate(bay, trace, start_latency, tick, initial=initial, until=until)
    h = simulate(hpa, trace, start_latency, tick, initial=initial, until=until)
    return Race(time_to_reach(b, n, since), time_to_reach(h, n, since), b, h)
