"""The proportional rule with HPA's handling of missing samples and tasks not yet ready."""

from __future__ import annotations

from services.autoscaler.domain import MetricSample, MetricTarget, Observation
from services.autoscaler.domain.proportional import REVERSED, WITHIN_TOLERANCE, per_task, propose

TARGET = 0.5


def group(values: list[float | None], current: int | None = None) -> tuple[MetricSample, frozenset[str], int]:
    """Ready tasks t0.. with these samples (None: missing); `current` beyond them are not ready."""
    ids = [f"t{i}" for i in range(len(values))]
    sample = MetricSample(per_task=dict(zip(ids, values, strict=True)))
    return sample, frozenset(ids), current if current is not None else len(values)


def rec(values: list[float | None], current: int | None = None) -> tuple[int | None, str]:
    sample, ready, cur = group(values, current)
    p = per_task(sample, ready, cur, TARGET, 0.1)
    return p.recommendation, p.note


def test_proportional_rule() -> None:
    assert rec([1.0] * 10) == (20, "")  # twice the target on 10 tasks
    assert rec([0.25] * 10) == (5, "")
    assert rec([0.555] * 10) == (12, "")  # 1.11 of target: outside the tolerance, ceil(11.1)


def test_within_tolerance_nothing_changes() -> None:
    assert rec([0.55] * 10) == (10, WITHIN_TOLERANCE)
    assert rec([0.45] * 10) == (10, WITHIN_TOLERANCE)
    assert rec([0.5] * 10) == (10, WITHIN_TOLERANCE)


def test_not_ready_tasks_count_as_idle_on_the_way_up() -> None:
    # 8 ready at 2x, 2 starting: (8 x 1.0) / (0.5 x 10) = 1.6 of target on 10 -> 16, not 20
    assert rec([1.0] * 8, current=10) == (16, "2 not ready counted as 0")


def test_not_ready_tasks_reversing_a_scale_up_hold() -> None:
    # 2 ready at 1.5x, 8 starting: counted as idle the group is at 0.3x: no scale-up, and no scale-down
    assert rec([0.75] * 2, current=10) == (10, REVERSED)


def test_not_ready_tasks_are_left_out_of_a_scale_down() -> None:
    assert rec([0.25] * 5, current=10) == (3, "")  # HPA: ceil(0.5 x 5 ready)


def test_missing_samples_count_at_target_on_the_way_down() -> None:
    # 8 at half the target, 2 missing at the target: (8 x 0.25 + 2 x 0.5) / (0.5 x 10) = 0.6 -> 6, not 4
    assert rec([0.25] * 8 + [None] * 2) == (6, "2 missing counted at target")
    # 2 at half, 8 missing: adjusted 0.9, within tolerance: hold rather than scale down on no data
    assert rec([0.25] * 2 + [None] * 8) == (10, WITHIN_TOLERANCE)


def test_missing_samples_count_as_idle_on_the_way_up() -> None:
    # 5 at 3x, 5 missing as idle: (5 x 1.5) / (0.5 x 10) = 1.5 of target on 10 -> 15, not 30
    assert rec([1.5] * 5 + [None] * 5) == (15, "5 missing counted as 0")
    # 5 at 2x, 5 missing: adjusted exactly at target: hold
    assert rec([1.0] * 5 + [None] * 5) == (10, WITHIN_TOLERANCE)
    # 1 at 2x among 10: adjusted 0.2, a reversal: hold
    assert rec([1.0] + [None] * 9) == (10, REVERSED)


def test_no_sample_from_any_ready_task_is_no_data() -> None:
    assert rec([None] * 4) == (None, "no data")
    assert rec([], current=3) == (None, "no data")


def test_a_group_total_needs_total_over_target() -> None:
    backlog = MetricTarget("backlog", 100)
    obs = Observation(current=5, samples={"backlog": MetricSample(total=1000)})
    assert propose(backlog, obs, 0.1).recommendation == 10
    obs = Observation(current=10, samples={"backlog": MetricSample(total=1050)})
    assert propose(backlog, obs, 0.1).recommendation == 10
    assert propose(backlog, Observation(current=5), 0.1).recommendation is None


def test_a_custom_group_total_is_a_per_task_average_target() -> None:
    rps = MetricTarget("custom", 100, name="rps", per_task=False)
    obs = Observation(current=4, samples={"rps": MetricSample(total=900)})
    p = propose(rps, obs, 0.1)
    assert (p.value, p.recommendation, p.need) == (900, 9, 9.0)
