"""The usage window and the pushed metric store without NATS: conversions, windows, limits."""

from __future__ import annotations

import pytest
from bay.v1.scheduler_pb2 import UsageBatch, UsageSample

from libs.samples.pushed import Pushed, PushedMetrics
from libs.samples.usage import UsageWindow, points
from services.autoscaler.adapters.observe import Observer


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sample(task: str, cpu: float, limit: float = 1.0, mem: int = 0, mem_limit: int = 0) -> UsageSample:
    return UsageSample(
        task_id=task, cpu_fraction=cpu, cpus_limit=limit, mem_bytes=mem, mem_limit_bytes=mem_limit
    )


def test_points_are_fractions_of_the_limits() -> None:
    batch = UsageBatch(
        group="web",
        samples=[
            sample("web.a", 0.25, 0.5, 30, 120),
            sample("web.b", 1.5, 0.0),  # no cpu limit: cores used; no memory limit: no fraction
            sample("web.c", -1.0, 1.0),  # negative cpu, no memory: nothing usable
            sample("", 0.5),  # no task
            # a task's first sample: no rate yet, so no cpu figure (missing, not 0); its memory counts
            UsageSample(task_id="web.d", cpus_limit=1.0, mem_bytes=60, mem_limit_bytes=120),
            UsageSample(task_id="web.e", cpus_limit=1.0),  # first sample, no memory limit: nothing
        ],
    )
    got = [(p.task_id, p.cpu, p.mem, p.at) for p in points(batch, 7.0)]
    assert got == [("web.a", 0.5, 0.25, 7.0), ("web.b", 1.5, None, 7.0), ("web.d", None, 0.5, 7.0)]


def test_cpu_burnt_before_a_task_was_ready_is_left_out() -> None:
    window = UsageWindow(clock=Clock(5.0))
    window.add(
        UsageBatch(
            group="web",
            samples=[  # cpu_since: where each figure's interval began (unix seconds)
                UsageSample(task_id="web.a", cpu_fraction=3.0, cpus_limit=1.0, cpu_since=99.0,
                            mem_bytes=10, mem_limit_bytes=100),  # starting up: before ready at 100
                UsageSample(task_id="web.a", cpu_fraction=0.5, cpus_limit=1.0, cpu_since=100.0),
                UsageSample(task_id="web.b", cpu_fraction=2.0, cpus_limit=1.0, cpu_since=50.0),
                UsageSample(task_id="web.c", cpu_fraction=0.7, cpus_limit=1.0),  # does not say: kept
            ],
        )
    )  # fmt: skip
    ready_since = {"web.a": 100.0, "web.b": 40.0, "web.c": 100.0}
    assert window.cpu("web", since=0.0) == {"web.a": 1.75, "web.b": 2.0, "web.c": 0.7}
    assert window.values("web", 0.0, "cpu", measured_from=ready_since) == {
        "web.a": 0.5,
        "web.b": 2.0,
        "web.c": 0.7,
    }
    assert window.values("web", 0.0, "mem", measured_from=ready_since) == {"web.a": 0.1}  # memory: all of it
    assert window.values("web", 0.0, "cpu", measured_from={"web.a": 200.0}) == {"web.b": 2.0, "web.c": 0.7}


def test_the_period_is_the_slowest_publishers_median_gap() -> None:
    clock = Clock(0.0)
    window = UsageWindow(clock=clock)
    assert window.period("web") is None
    for t in (0.0, 2.0, 4.0, 9.0, 11.0):  # one late batch does not make the period
        clock.now = t
        window.add(UsageBatch(cluster="east", group="web", samples=[sample("web.a", 0.1)]))
    assert window.period("web") == 2.0
    for t in (0.5, 3.5, 6.5):  # moving to another cluster, whose scheduler publishes every 3 s
        clock.now = t
        window.add(UsageBatch(cluster="west", group="web", samples=[sample("web.b", 0.1)]))
    assert window.period("web") == 3.0 and window.period("api") is None
    window.forget("web")
    assert window.period("web") is None


def test_the_usage_mean_spans_two_periods_of_a_slow_publisher() -> None:
    clock = Clock(0.0)
    window = UsageWindow(clock=clock)
    observer = Observer(window, PushedMetrics(), usage_seconds=2.0)
    assert observer.usage_span("web") == 2.0  # nothing known yet
    for t in (0.0, 1.0, 2.0):
        clock.now = t
        window.add(UsageBatch(cluster="local", group="web", samples=[sample("web.a", 0.1)]))
    assert observer.usage_span("web") == 2.0  # every second: the setting holds
    for t in (7.0, 12.0, 17.0):  # BAY_USAGE_INTERVAL_SECONDS=5
        clock.now = t
        window.add(UsageBatch(cluster="local", group="web", samples=[sample("web.a", 0.1)]))
    assert observer.usage_span("web") == 10.0  # a mean over 2 s would find no sample most of the time


def test_window_bounds_and_kinds() -> None:
    clock = Clock(100.0)
    window = UsageWindow(clock=clock, keep_seconds=10.0, max_per_group=3)
    for i in range(5):  # only the last 3 are kept
        clock.now = 100.0 + i
        window.add(UsageBatch(group="web", samples=[sample("web.a", float(i))]))
    assert window.cpu("web", since=0.0) == {"web.a": 3.0}  # (2 + 3 + 4) / 3
    window.add(UsageBatch(group="web", samples=[sample("web.b", 10.0)]))
    assert window.cpu("web", since=0.0) == {"web.a": 3.5, "web.b": 10.0}  # web.a's 2 went out
    assert window.sample_mean("web", since=0.0) == pytest.approx((3 + 4 + 10) / 3)
    assert window.sample_mean("web", since=0.0, task_ids={"web.a"}) == 3.5
    assert window.sample_mean("web", since=0.0, kind="mem") is None
    assert window.mem("web", since=0.0) == {}
    window.add(UsageBatch(group="", samples=[sample("x.a", 1.0)]))  # no group: ignored
    assert window.received == 6
    with pytest.raises(ValueError):
        window.values("web", 0.0, "disk")  # type: ignore[arg-type]
    window.forget("web")
    assert window.cpu("web", since=0.0) == {} and window.last_arrival("web") is None


def test_window_rejects_what_is_not_a_batch_of_its_subject() -> None:
    window = UsageWindow()
    data = UsageBatch(group="web", samples=[sample("web.a", 0.5)]).SerializeToString()
    assert not window.add_bytes(b"\x08\x96", "bay.usage.local.web")
    assert not window.add_bytes(data, "bay.usage.local.api")
    assert not window.add_bytes(data, "bay.usage.local.web.more")
    assert window.add_bytes(data, "bay.usage.local.web")
    assert window.cpu("web", since=float("-inf")) == {"web.a": 0.5}


def test_pushed_store_limits_its_series() -> None:
    store = PushedMetrics(clock=Clock(), max_series=2, max_tasks=2)
    assert store.add("web", "a", Pushed(1.0))
    assert store.add("web", "b", Pushed(2.0, "web.1"))
    assert not store.add("web", "c", Pushed(3.0))  # a third series
    assert store.add("web", "a", Pushed(4.0))  # an existing one still updates
    assert store.add("web", "b", Pushed(5.0, "web.2"))
    assert not store.add("web", "b", Pushed(6.0, "web.3"))  # a third task of one series
    assert store.group_value("web", "a") == 4.0
    assert store.task_values("web", "b") == {"web.1": 2.0, "web.2": 5.0}
    store.forget("web")
    assert store.group_value("web", "a") is None and store.task_values("web", "b") == {}
    assert store.add("web", "c", Pushed(3.0))  # room again


def test_staleness_is_inclusive_of_the_limit() -> None:
    clock = Clock(0.0)
    store = PushedMetrics(clock=clock, stale_after=5.0)
    store.add("web", "a", Pushed(1.0))
    clock.now = 5.0
    assert store.group_value("web", "a") == 1.0
    clock.now = 5.001
    assert store.group_value("web", "a") is None
