"""The HPA model against Bay on the same load: a tenfold step, 10 -> 100 tasks, and the way back."""

from __future__ import annotations

from services.autoscaler.domain.hpa import HpaConfig, HpaModel
from services.autoscaler.domain.sim import (
    BayEngine,
    race,
    simulate,
    simulate_counts,
    step_trace,
    time_to_reach,
)
from tests.unit.autoscaler.common import cpu_policy

STEP = step_trace(5.0, 50.0, at=0.0, start=-120.0)  # 10 tasks at the 0.5 target, then ten times the load
LATENCY = 4.0


def changes(points: list, attr: str = "desired") -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    for p in points:
        v = getattr(p, attr)
        if not out or out[-1][1] != v:
            out.append((p.t, v))
    return out


def test_hpa_doubles_every_sync_and_reaches_100_at_the_fourth() -> None:
    points = simulate_counts(HpaModel(HpaConfig(max=200)), STEP, LATENCY, 1.0, initial=10, until=200)
    assert changes(points)[1:] == [(0.0, 20), (15.0, 40), (30.0, 80), (45.0, 100)]
    ready = [(p.t, p.ready) for p in points]
    assert time_to_reach(ready, 100) == 45.0 + LATENCY


def test_bay_reaches_100_in_one_tick() -> None:
    engine = BayEngine(cpu_policy())
    points = simulate_counts(engine, STEP, LATENCY, 1.0, initial=10, until=200)
    assert changes(points)[1:] == [(0.0, 100)]
    ready = simulate(BayEngine(cpu_policy()), STEP, LATENCY, 1.0, initial=10, until=200)
    bay = time_to_reach(ready, 100)
    hpa = time_to_reach(simulate(HpaModel(HpaConfig(max=200)), STEP, LATENCY, 1.0, until=200), 100)
    assert bay == LATENCY and hpa is not None and hpa / bay > 10


def test_hpa_waits_300_s_then_drops_at_once() -> None:
    trace = [(-420.0, 50.0), (0.0, 5.0)]  # syncs at ..., -15, 0, 15, ...
    points = simulate_counts(HpaModel(HpaConfig(max=200)), trace, LATENCY, 1.0, initial=100, until=400)
    assert changes(points)[1:] == [(285.0, 10)]  # 300 s after the last sync that wanted 100


def test_hpa_scale_up_is_limited_by_4_pods_when_that_is_more() -> None:
    model = HpaModel(HpaConfig(max=200))
    points = simulate_counts(
        model, step_trace(1.0, 10.0, at=0.0, start=-60), LATENCY, 1.0, initial=2, until=20
    )
    assert changes(points)[1:] == [(0.0, 6), (15.0, 12)]  # max(2 x 2, 2 + 4), then max(12, 10)


def test_time_to_reach() -> None:
    assert time_to_reach([(0.0, 1), (5.0, 3), (9.0, 8)], 3) == 5.0
    assert time_to_reach([(0.0, 1), (5.0, 3)], 4) is None
    assert time_to_reach([(10.0, 9), (12.0, 9)], 9, since=11.0) == 1.0


def test_race_gives_both_times_and_the_ratio() -> None:
    r = race(BayEngine(cpu_policy()), HpaModel(HpaConfig(max=200)), STEP, LATENCY, 100, until=120)
    assert (r.bay_s, r.hpa_s) == (LATENCY, 45.0 + LATENCY)
    assert r.ratio == (45.0 + LATENCY) / LATENCY
