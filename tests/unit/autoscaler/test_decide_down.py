"""The way down: the highest of the down window wins, steps of at most a quarter, cooldown, min;
and never down on missing data."""

from __future__ import annotations

import itertools

from services.autoscaler.domain import MetricSample, MetricTarget, Observation, Policy, State, decide, step
from tests.unit.autoscaler.common import T0, DownBehaviour, cpu, cpu_policy, run, steady


def test_a_drop_waits_for_the_window_then_steps_down_to_min() -> None:
    policy = cpu_policy(lo=10)
    state = steady(policy, 100)  # last recommendation of 100 at T0 - 1
    decisions, _ = run(policy, state, cpu(100, 0.03), T0, 600)  # wants 6, min is 10
    first = decisions[0]
    assert (first.to, first.recommendation, first.reason) == (100, 6, "stabilising until 12:04:59")
    moves = [d for d in decisions if d.changed]
    assert moves[0].at == T0 + 299  # the 100 made at T0 - 1 leaves the 300 s window
    assert [(d.frm, d.to) for d in moves] == [
        (100, 75), (75, 57), (57, 43), (43, 33), (33, 25), (25, 19), (19, 15), (15, 12), (12, 10)
    ]  # fmt: skip
    assert all(d.rule == "step limit" for d in moves[:-1]) and moves[-1].rule == "step limit, at min"
    assert all(b.at - a.at == 15 for a, b in itertools.pairwise(moves))  # the down cooldown
    between = next(d for d in decisions if d.at == moves[0].at + 1)
    assert between.reason == "cooldown until 12:05:14"
    assert decisions[-1].to == 10 and decisions[-1].reason == "at min"


def test_the_highest_recommendation_of_the_window_wins() -> None:
    policy = cpu_policy(down=DownBehaviour(max_percent=100))
    state = steady(policy, 100)
    d1, state = run(policy, state, cpu(100, 0.25), T0, 100)  # wants 50
    d2, state = run(policy, state, cpu(100, 0.1), T0 + 100, 400)  # then 20
    decisions = d1 + d2
    moves = [d for d in decisions if d.changed]
    assert (moves[0].at, moves[0].to, moves[0].rule) == (T0 + 299, 50, "stabilised (highest of 300 s)")
    assert (moves[1].at, moves[1].to, moves[1].rule) == (T0 + 399, 20, "proportional cpu")
    assert len(moves) == 2


def test_at_least_one_task_goes_per_step() -> None:
    policy = cpu_policy(down=DownBehaviour(window_s=0, max_percent=10))
    d = decide(policy, State.initial(policy), cpu(3, 0.1), T0)
    assert (d.to, d.rule) == (2, "step limit")


def test_a_metric_source_that_disappears_never_scales_down() -> None:
    policy = cpu_policy(down=DownBehaviour(window_s=0, cooldown_s=0))
    state = steady(policy, 10, 0.1, seconds=5)
    silent = Observation(current=10, ready=frozenset(f"t{i}" for i in range(10)), samples={})
    all_missing = Observation(
        current=10,
        ready=silent.ready,
        samples={"cpu": MetricSample(per_task=dict.fromkeys(silent.ready))},
    )
    for obs in (silent, all_missing):
        s = state
        for i in range(400):
            d, s = step(policy, s, obs, T0 + i)
            assert (d.to, d.reason) == (10, "no data for cpu (waiting)")


def test_one_metric_missing_blocks_the_scale_down_another_asks_for() -> None:
    policy = Policy(
        min=1,
        max=100,
        metrics=(MetricTarget("cpu", 0.5), MetricTarget("memory", 0.5)),
        down=DownBehaviour(window_s=0),
    )
    obs = Observation(
        current=10,
        ready=frozenset(f"t{i}" for i in range(10)),
        samples={"cpu": MetricSample(per_task={f"t{i}": 0.1 for i in range(10)})},
    )
    d = decide(policy, State.initial(policy), obs, T0)
    assert (d.to, d.reason) == (10, "no data for memory (waiting)")
    assert d.metrics[0].recommendation == 2


def test_scale_down_holds_within_tolerance() -> None:
    policy = cpu_policy()
    state = steady(policy, 10)
    d = decide(policy, state, cpu(10, 0.46), T0)
    assert (d.to, d.rule, d.reason) == (10, "hold", "within tolerance")


def test_at_min_a_lower_wish_is_held_by_min_not_by_the_window() -> None:
    """At min, a recommendation below it is held by the bound: the window's higher recommendation
    (here the steady 10 of a moment ago) changes nothing, and status says "at min", not
    "stabilising until ..." (which would promise a move that min forbids)."""
    policy = cpu_policy(lo=10)
    state = steady(policy, 10)  # last recommendation of 10 at T0 - 1: inside the down window
    decisions, _ = run(policy, state, cpu(10, 0.03), T0, 5)  # wants 1, min is 10
    assert all((d.to, d.changed, d.reason) == (10, False, "at min") for d in decisions), decisions
