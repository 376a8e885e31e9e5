"""A noisy steady load (seeded, +-15% around the target each second) moves nothing back and forth."""

from __future__ import annotations

import itertools

import pytest

from services.autoscaler.domain.sim import BayEngine, simulate_counts
from tests.unit.autoscaler.common import cpu_policy


@pytest.mark.parametrize("tasks", [3, 10, 40])
@pytest.mark.parametrize("seed", range(5))
def test_noisy_steady_load_gives_no_direction_change(tasks: int, seed: int) -> None:
    engine = BayEngine(cpu_policy())
    trace = [(0.0, 0.5 * tasks)]  # each task at the target on average
    points = simulate_counts(engine, trace, 2.0, 1.0, initial=tasks, until=600, noise=0.15, seed=seed)
    counts = [p.desired for p in points]
    steps = [b - a for a, b in itertools.pairwise(counts) if b != a]
    assert len(steps) <= 1, steps
    assert len({s > 0 for s in steps}) <= 1
    assert max(d.recommendation or 0 for d in engine.decisions) > tasks  # the noise was there to resist
