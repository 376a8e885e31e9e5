"""The way up: several metrics, panic's one-step jump, the short window, cooldowns, max."""

from __future__ import annotations

from dataclasses import replace

from services.autoscaler.domain import (
    MetricSample,
    MetricTarget,
    Observation,
    Policy,
    State,
    decide,
    step,
    uniform,
)
from tests.unit.autoscaler.common import T0, UpBehaviour, cpu, cpu_policy, run, steady


def test_several_metrics_the_largest_recommendation_wins() -> None:
    policy = Policy(
        min=1,
        max=100,
        metrics=(
            MetricTarget("cpu", 0.5),
            MetricTarget("memory", 0.8),
            MetricTarget("custom", 100, name="rps"),
        ),
    )
    obs = uniform(10, 10, {"cpu": 0.75, "memory": 0.96, "rps": 180})  # cpu -> 15, memory -> 12, rps -> 18
    d = decide(policy, State.initial(policy), obs, T0)
    assert (d.frm, d.to, d.rule) == (10, 18, "proportional rps")
    assert [(m.name, m.recommendation) for m in d.metrics] == [("cpu", 15), ("memory", 12), ("rps", 18)]
    assert d.recommendation == 18 and not d.panic


def test_panic_jumps_from_10_to_100_in_one_decision() -> None:
    policy = cpu_policy()
    state = steady(policy, 10)
    d = decide(policy, state, cpu(10, 5.0), T0)  # ten times the target, one tick after a minute at target
    assert (d.frm, d.to, d.rule, d.panic, d.over_panic) == (10, 100, "panic", True, True)


def test_a_moderate_rise_must_hold_for_the_short_window() -> None:
    policy = cpu_policy()
    state = steady(policy, 10)
    decisions, _ = run(policy, state, cpu(10, 0.75), T0, 8)  # 1.5x: not a panic
    assert [d.to for d in decisions[:5]] == [10] * 5
    assert decisions[0].reason == "rising, stabilising until 12:00:05"
    assert (decisions[5].to, decisions[5].rule, decisions[5].at - T0) == (15, "proportional cpu", 5)
    assert not any(d.changed for d in decisions[6:])


def test_no_scale_down_in_panic_until_the_stable_window_passes() -> None:
    policy = cpu_policy(down=replace(cpu_policy().down, window_s=0.0))  # no down window: panic alone holds
    state = steady(policy, 10)
    d, state = step(policy, state, cpu(10, 5.0), T0)
    assert d.to == 100
    # the tasks are ready; the load falls to a fifth of the target: panic still holds it
    decisions, _ = run(policy, state, cpu(100, 0.1), T0 + 1, 70)
    held = [d for d in decisions if d.at < T0 + 60]
    assert all(d.to == 100 and d.panic for d in held)
    assert held[0].reason == "panic until 12:01:00: no scale-down"
    first_move = next(d for d in decisions if d.changed)
    assert (first_move.at, first_move.panic) == (T0 + 60, False)
    assert first_move.to < 100


def test_panic_is_not_inflated_by_tasks_still_starting() -> None:
    policy = cpu_policy()
    state = steady(policy, 10)
    d, state = step(policy, state, cpu(10, 5.0), T0)
    assert d.to == 100
    # 90 tasks starting, the 10 ready ones still at 10x: the need is still 100 tasks
    decisions, _ = run(policy, state, cpu(100, 5.0, ready=10), T0 + 1, 20)
    assert all(d.to == 100 for d in decisions)
    assert decisions[0].reason.startswith("within tolerance; panic until")


def test_up_cooldown_holds_but_still_records() -> None:
    policy = cpu_policy(up=UpBehaviour(cooldown_s=30))
    state = steady(policy, 10)
    d, state = step(policy, state, cpu(10, 5.0), T0)
    assert d.to == 100
    d = decide(policy, state, cpu(100, 1.0), T0 + 5)  # twice the target again: wants 200
    assert (d.to, d.rule, d.reason) == (100, "hold", "cooldown until 12:00:30")
    assert d.recommendation == 200 and d.metrics[0].recommendation == 200
    assert decide(policy, state, cpu(100, 1.0), T0 + 30).to == 200


def test_extreme_load_stops_at_max() -> None:
    policy = cpu_policy(hi=40)
    state = steady(policy, 10)
    d, state = step(policy, state, cpu(10, 500.0), T0)
    assert (d.to, d.rule, d.recommendation) == (40, "panic, at max", 10000)
    d = decide(policy, state, cpu(40, 125.0), T0 + 1)
    assert (d.to, d.reason) == (40, "at max")


def test_a_count_outside_the_bounds_is_brought_in_at_once() -> None:
    policy = cpu_policy(lo=3, hi=8)
    state = State.initial(policy)
    assert (decide(policy, state, cpu(12, 0.5), T0).to, decide(policy, state, cpu(12, 0.5), T0).rule) == (
        8,
        "at max",
    )
    assert decide(policy, state, cpu(1, 0.5), T0).to == 3
    nothing = Observation(current=1, samples={})
    assert (decide(policy, state, nothing, T0).to, decide(policy, state, nothing, T0).rule) == (3, "at min")


def test_a_missing_metric_does_not_stop_another_from_scaling_up() -> None:
    policy = Policy(min=1, max=100, metrics=(MetricTarget("cpu", 0.5), MetricTarget("memory", 0.5)))
    obs = Observation(
        current=10,
        ready=frozenset(f"t{i}" for i in range(10)),
        samples={"cpu": MetricSample(per_task={f"t{i}": 0.75 for i in range(10)})},
    )
    d = decide(policy, State.initial(policy), obs, T0)
    assert (d.to, d.rule) == (15, "proportional cpu")
    assert d.metrics[1].value is None and d.metrics[1].recommendation is None
