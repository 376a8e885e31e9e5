"""A restarted autoscaler folds its decision records and decides as if it had never stopped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from services.autoscaler.domain import (
    Decision,
    Observation,
    Policy,
    as_record,
    decide,
    fold,
    from_record,
    rebuild,
)
from services.autoscaler.domain.sim import BayEngine, simulate_counts
from services.autoscaler.domain.state import state_from_record, state_record
from tests.unit.autoscaler.common import T0, cpu_policy

# steady, a tenfold step (panic), a fall (stabilisation, steps down), a moderate rise, noise throughout
TRACE = [(T0 - 400, 5.0), (T0, 50.0), (T0 + 100, 10.0), (T0 + 500, 3.0), (T0 + 800, 8.0)]


@dataclass
class Recording:
    """Bay's engine, keeping what it saw so each evaluation can be decided again."""

    engine: BayEngine
    seen: list[tuple[Observation, float]] = field(default_factory=list)

    @property
    def period_s(self) -> float:
        return self.engine.period_s

    def step(self, obs: Observation, now: float) -> int:
        self.seen.append((obs, now))
        return self.engine.step(obs, now)


def recorded(policy: Policy) -> tuple[list[Decision], list[tuple[Observation, float]]]:
    rec = Recording(BayEngine(policy))
    simulate_counts(rec, TRACE, 3.0, 1.0, initial=10, until=T0 + 1100, noise=0.1, seed=7)
    return rec.engine.decisions, rec.seen


def through_the_log(decisions: list[Decision]) -> list[Decision]:
    return [from_record(json.loads(json.dumps(as_record(d)))) for d in decisions]


def test_records_survive_the_log_unchanged() -> None:
    decisions, _ = recorded(cpu_policy())
    assert through_the_log(decisions) == decisions


def test_rebuilt_state_decides_as_the_uninterrupted_engine() -> None:
    policy = cpu_policy()
    decisions, seen = recorded(policy)
    rules = {d.rule for d in decisions}
    assert {"panic", "step limit", "hold"} <= rules  # the run went through the interesting parts
    log = through_the_log(decisions)
    for k in range(1, len(decisions), 5):
        obs, now = seen[k]
        state = rebuild(policy, log[:k])
        assert decide(policy, state, obs, now) == decisions[k], k


def test_replaying_only_the_recent_records_is_enough() -> None:
    policy = cpu_policy()
    decisions, seen = recorded(policy)
    keep = rebuild(policy, []).keep_s
    log = through_the_log(decisions)
    for k in range(1, len(decisions), 5):
        obs, now = seen[k]
        recent = [d for d in log[:k] if d.at > now - keep]
        assert decide(policy, rebuild(policy, recent), obs, now) == decisions[k], k


def test_a_state_snapshot_resumes_like_the_records() -> None:
    policy = cpu_policy()
    decisions, seen = recorded(policy)
    log = through_the_log(decisions)
    for k in (50, 420, 430, 700, 1000):
        snap = state_from_record(json.loads(json.dumps(state_record(rebuild(policy, log[: k - 10])))))
        for d in log[k - 10 : k]:
            snap = fold(snap, d)
        obs, now = seen[k]
        assert decide(policy, snap, obs, now) == decisions[k], k


def test_a_changed_policy_keeps_the_memory_under_its_own_windows() -> None:
    policy = cpu_policy()
    decisions, _ = recorded(policy)
    state = rebuild(policy, through_the_log(decisions))
    longer = replace(policy, down=replace(policy.down, window_s=600))
    moved = state.with_policy(longer)
    assert (moved.down_keep_s, moved.keep_s, moved.highs) == (600, 600, state.highs)
