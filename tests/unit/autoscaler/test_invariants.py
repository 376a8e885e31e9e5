"""Seeded random histories and observations: the bounds and the no-data rule always hold."""

from __future__ import annotations

import random

from services.autoscaler.domain import (
    DownBehaviour,
    MetricSample,
    MetricTarget,
    Observation,
    Policy,
    State,
    UpBehaviour,
    step,
    validate,
)
from tests.unit.autoscaler.common import T0


def random_policy(rng: random.Random) -> Policy:
    lo = rng.randint(1, 5)
    return Policy(
        min=lo,
        max=rng.randint(lo, 60),
        metrics=(MetricTarget("cpu", rng.choice([0.3, 0.5, 0.8])), MetricTarget("custom", 50, name="rps")),
        up=UpBehaviour(cooldown_s=rng.choice([0, 5])),
        down=DownBehaviour(window_s=rng.choice([0, 30, 300]), cooldown_s=rng.choice([0, 15])),
    )


def random_obs(rng: random.Random, current: int) -> Observation:
    ready = [f"t{i}" for i in range(current) if rng.random() < 0.85]
    samples = {}
    for name, scale in (("cpu", 1.0), ("rps", 100.0)):
        if rng.random() < 0.1:
            continue  # the source gave nothing this time
        values = {t: (None if rng.random() < 0.1 else rng.uniform(0, 3) * scale) for t in ready}
        samples[name] = MetricSample(per_task=values)
    return Observation(current=current, ready=frozenset(ready), samples=samples)


def test_random_runs_keep_the_invariants() -> None:
    rng = random.Random(12)
    for _ in range(40):
        policy = random_policy(rng)
        assert validate(policy) == []
        state, current = State.initial(policy), rng.randint(0, 70)
        for i in range(150):
            obs = random_obs(rng, current)
            d, state = step(policy, state, obs, T0 + i)
            assert policy.min <= d.to <= policy.max, d
            assert d.changed == (d.rule != "hold"), d
            no_data = any(m.recommendation is None for m in d.metrics)
            if (no_data or d.panic) and current <= policy.max:
                assert d.to >= current or d.to == policy.max, d
            current = d.to
