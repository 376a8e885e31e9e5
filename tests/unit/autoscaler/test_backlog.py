"""A worker group on a JetStream backlog: from zero at activation, proportional, back to zero."""

from __future__ import annotations

from dataclasses import replace

from services.autoscaler.domain import MetricSample, MetricTarget, Observation, Policy, State, decide
from tests.unit.autoscaler.common import T0, run

POLICY = Policy(min=0, max=20, metrics=(MetricTarget("backlog", 100, activation=5, source="jobs/workers"),))


def backlog(current: int, pending: float) -> Observation:
    return Observation(
        current=current,
        ready=frozenset(f"t{i}" for i in range(current)),
        samples={"backlog": MetricSample(total=pending)},
    )


def test_below_activation_a_group_at_zero_stays_there() -> None:
    for pending in (0, 3, 4.9):
        d = decide(POLICY, State.initial(POLICY), backlog(0, pending), T0)
        assert (d.to, d.reason) == (0, "below activation")


def test_at_activation_it_starts_at_once_and_in_proportion() -> None:
    d = decide(POLICY, State.initial(POLICY), backlog(0, 5), T0)
    assert (d.to, d.rule) == (1, "activation")
    d = decide(POLICY, State.initial(POLICY), backlog(0, 950), T0)
    assert (d.to, d.rule) == (10, "activation")
    d = decide(POLICY, State.initial(POLICY), backlog(0, 1_000_000), T0)
    assert d.to == 20  # still never above max


def test_zero_to_n_and_back_to_zero() -> None:
    state = State.initial(POLICY)
    ups, state = run(POLICY, state, backlog(0, 250), T0, 30)
    assert ups[0].to == 3 and ups[0].rule == "activation"
    more, state = run(POLICY, state, backlog(3, 1000), T0 + 30, 30)
    assert more[-1].to == 10
    drain, state = run(POLICY, state, backlog(10, 0), T0 + 60, 500)
    moves = [d for d in drain if d.changed]
    assert moves[0].at == T0 + 59 + 300  # the last recommendation of 10 leaves the window
    assert [d.to for d in moves] == [8, 6, 5, 4, 3, 2, 1, 0]
    assert moves[-1].rule == "scale to zero"
    assert drain[-1].reason == "below activation"


def test_a_trickle_below_activation_still_lets_the_group_go_to_zero() -> None:
    policy = replace(POLICY, down=replace(POLICY.down, window_s=0, cooldown_s=0))
    d = decide(policy, State.initial(policy), backlog(1, 3), T0)
    assert (d.to, d.rule) == (0, "scale to zero")


def test_with_a_min_the_group_never_goes_to_zero() -> None:
    policy = replace(POLICY, min=2, down=replace(POLICY.down, window_s=0, cooldown_s=0))
    d = decide(policy, State.initial(policy), backlog(2, 0), T0)
    assert (d.to, d.changed, d.reason) == (2, False, "at min")
