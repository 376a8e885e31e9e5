"""The usage sampler's arithmetic: cumulative CPU seconds into a fraction of a core, batched per group."""

from __future__ import annotations

import pytest

from services.scheduler.adapters.usage import UsageSampler, usage_subject
from services.scheduler.ports import TaskUsage

GROUPS = {"web.1": "web", "web.2": "web", "api.1": "api"}


def usage(task_id: str, at: float, cpu: float, mem: int = 1000) -> TaskUsage:
    return TaskUsage(task_id, at, cpu, mem, cpus_limit=0.5, mem_limit_bytes=64 << 20)


def fractions(sampler: UsageSampler, samples: list[TaskUsage]) -> dict[str, float | None]:
    """Each task's fraction; None where the sample leaves it unset (no rate yet)."""
    return {
        s.task_id: s.cpu_fraction if s.HasField("cpu_fraction") else None
        for b in sampler.batches(samples, GROUPS.get)
        for s in b.samples
    }


def test_subject() -> None:
    assert usage_subject("local", "web") == "bay.usage.local.web"


def test_first_sample_has_no_fraction_then_delta_over_elapsed_time() -> None:
    sampler = UsageSampler("local")
    assert fractions(sampler, [usage("web.1", 100.0, 5.0)]) == {"web.1": None}
    assert fractions(sampler, [usage("web.1", 102.0, 6.0)]) == {"web.1": pytest.approx(0.5)}
    assert fractions(sampler, [usage("web.1", 106.0, 14.0)]) == {"web.1": pytest.approx(2.0)}


def test_each_fraction_says_where_its_interval_began() -> None:
    sampler = UsageSampler("local")
    [first] = sampler.batches([usage("web.1", 100.0, 5.0)], GROUPS.get)
    assert first.samples[0].cpu_since == 0.0  # no interval yet
    [second] = sampler.batches([usage("web.1", 102.0, 6.0)], GROUPS.get)
    assert (second.samples[0].cpu_since, second.samples[0].timestamp) == (100.0, 102.0)
    [back] = sampler.batches([usage("web.1", 104.0, 1.0)], GROUPS.get)  # a counter that went back
    assert not back.samples[0].HasField("cpu_fraction") and back.samples[0].cpu_since == 0.0


def test_batches_per_group_in_order_with_every_field() -> None:
    sampler = UsageSampler("east")
    sampler.batches([usage("web.2", 10.0, 1.0), usage("web.1", 10.0, 1.0)], GROUPS.get)
    batches = sampler.batches(
        [usage("web.2", 11.0, 1.25, mem=7), usage("api.1", 11.0, 3.0), usage("web.1", 11.0, 2.0)],
        GROUPS.get,
    )
    assert [(b.cluster, b.group, [s.task_id for s in b.samples]) for b in batches] == [
        ("east", "api", ["api.1"]),
        ("east", "web", ["web.1", "web.2"]),
    ]
    web2 = batches[1].samples[1]
    assert (web2.timestamp, web2.cpu_seconds, web2.mem_bytes) == (11.0, 1.25, 7)
    assert web2.cpu_fraction == pytest.approx(0.25)
    assert (web2.cpus_limit, web2.mem_limit_bytes) == (0.5, 64 << 20)
    assert not batches[0].samples[0].HasField("cpu_fraction")  # api.1's first sample: no rate yet


def test_tasks_no_longer_sampled_are_forgotten() -> None:
    sampler = UsageSampler("local")
    sampler.batches([usage("web.1", 1.0, 1.0), usage("web.2", 1.0, 1.0)], GROUPS.get)
    sampler.batches([usage("web.1", 2.0, 2.0)], GROUPS.get)  # web.2 is gone
    # web.2 comes back (same id, e.g. re-adopted): it starts over rather than using a stale baseline.
    assert fractions(sampler, [usage("web.1", 3.0, 2.5), usage("web.2", 3.0, 9.0)]) == {
        "web.1": pytest.approx(0.5),
        "web.2": None,
    }


def test_unknown_group_is_not_sent_but_keeps_its_baseline() -> None:
    sampler = UsageSampler("local")
    groups: dict[str, str] = {}
    assert sampler.batches([usage("new.1", 1.0, 1.0)], groups.get) == []
    groups["new.1"] = "new"
    batches = sampler.batches([usage("new.1", 3.0, 2.0)], groups.get)
    assert [(b.group, [s.cpu_fraction for s in b.samples]) for b in batches] == [
        ("new", [pytest.approx(0.5)])
    ]


def test_counter_going_back_and_repeated_timestamps() -> None:
    sampler = UsageSampler("local")
    sampler.batches([usage("web.1", 10.0, 50.0)], GROUPS.get)
    assert fractions(sampler, [usage("web.1", 12.0, 51.0)]) == {"web.1": pytest.approx(0.5)}
    # The same instant again (no time passed): the last fraction stands, the baseline stays.
    assert fractions(sampler, [usage("web.1", 12.0, 51.0)]) == {"web.1": pytest.approx(0.5)}
    assert fractions(sampler, [usage("web.1", 14.0, 53.0)]) == {"web.1": pytest.approx(1.0)}
    # A counter that went back (new cgroup): no negative CPU (no rate), the next delta counts from there.
    assert fractions(sampler, [usage("web.1", 16.0, 1.0)]) == {"web.1": None}
    assert fractions(sampler, [usage("web.1", 18.0, 2.0)]) == {"web.1": pytest.approx(0.5)}
