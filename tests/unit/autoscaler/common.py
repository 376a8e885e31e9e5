"""Shared helpers for the autoscaler domain tests: a policy, observations, and a steady history."""

from __future__ import annotations

import calendar
from dataclasses import replace

from services.autoscaler.domain import (
    Decision,
    DownBehaviour,
    MetricSample,
    MetricTarget,
    Observation,
    Policy,
    State,
    UpBehaviour,
    step,
    uniform,
)

T0 = float(calendar.timegm((2026, 12, 2, 12, 0, 0)))  # 12:00:00 UTC


def cpu_policy(lo: int = 1, hi: int = 200, **kw: object) -> Policy:
    base = Policy(min=lo, max=hi, metrics=(MetricTarget("cpu", 0.5),))
    return replace(base, **kw)  # type: ignore[arg-type]


def cpu(current: int, util: float, ready: int | None = None) -> Observation:
    """`current` tasks, `ready` of them ready (all by default), each ready one at `util`."""
    return uniform(current, current if ready is None else ready, {"cpu": util})


def run(
    policy: Policy, state: State, obs: Observation, start: float, seconds: int
) -> tuple[list[Decision], State]:
    """One decision a second for `seconds`, the group following each decision (tasks ready at once)."""
    out: list[Decision] = []
    for i in range(seconds):
        d, state = step(policy, state, obs, start + i)
        out.append(d)
        if d.changed:
            obs = replace(obs, current=d.to, ready=frozenset(f"t{j}" for j in range(d.to)))
            obs = _respread(obs, d.to)
    return out, state


def _respread(obs: Observation, to: int) -> Observation:
    """The same total load over the new task count (what a load balancer does)."""
    samples = {}
    for name, s in obs.samples.items():
        if s.total is not None or not s.per_task:
            samples[name] = s
            continue
        total = sum(v for v in s.per_task.values() if v is not None)
        each = total / to if to else 0.0
        samples[name] = MetricSample(per_task={t: each for t in obs.ready})
    return replace(obs, samples=samples)


def steady(policy: Policy, current: int, util: float = 0.5, seconds: int = 400) -> State:
    """The state after `seconds` of load at `util` per task on `current` tasks, ending at T0 - 1."""
    _, state = run(policy, State.initial(policy), cpu(current, util), T0 - seconds, seconds)
    return state


__all__ = ["T0", "DownBehaviour", "UpBehaviour", "cpu", "cpu_policy", "run", "steady"]
