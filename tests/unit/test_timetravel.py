"""Time travel's pure parts: the ``at`` parameter, the gateway's NATS right to the usage samples,
the usage ring's bounds, a group's own subjects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bay.v1 import scheduler_pb2

from libs import natsperms
from libs.errors import ValidationFailed
from libs.events import subjects
from services.gateway.timetravel import parse_at
from services.gateway.usage_history import UsageHistory


def test_at_is_a_sequence_or_a_time_and_anything_else_names_at() -> None:
    assert parse_at("42").sequence == 42
    assert parse_at("2024-05-01T12:00:00Z").time == 1714564800.0
    assert parse_at("2024-05-01T14:00:00+02:00").time == 1714564800.0
    assert parse_at("2024-05-01 12:00").time == 1714564800.0  # no offset: UTC
    for bad in ("0", "-1", "1e3", "yesterday", "2024-02-30T00:00:00Z", "9" * 30, ""):
        with pytest.raises(ValidationFailed) as err:
            parse_at(bad)
        assert [v.field for v in err.value.violations] == ["at"], bad


def test_the_gateway_reads_usage_samples_and_dns_does_not() -> None:
    gateway = natsperms.for_service("gateway", "BAY_EVENTS")
    dns = natsperms.for_service("dns", "BAY_EVENTS")
    assert gateway is not None and dns is not None
    usage = subjects.usage("local", "web")
    assert any(subjects.matches(s, usage) for s in gateway.subscribe)
    assert not any(subjects.matches(s, usage) for s in dns.subscribe)
    assert not any(subjects.matches(s, usage) for s in gateway.publish)


def test_a_group_subjects_are_its_own_only() -> None:
    mine = subjects.of_group("web")
    assert any(subjects.matches(s, subjects.task("eu", "web.0b1c")) for s in mine)
    assert not any(subjects.matches(s, subjects.task("eu", "web2.0b1c")) for s in mine)
    assert not any(subjects.matches(s, subjects.group("web2")) for s in mine)
    assert any(subjects.matches(s, subjects.deploy("web")) for s in mine)


def batch(group: str, cpu: float, mem: float) -> scheduler_pb2.UsageBatch:
    sample = scheduler_pb2.UsageSample(
        task_id=f"{group}.1", cpu_fraction=cpu, cpus_limit=1.0, mem_bytes=int(mem * 100), mem_limit_bytes=100
    )
    return scheduler_pb2.UsageBatch(group=group, cluster="local", samples=[sample])


def test_the_usage_ring_keeps_a_bounded_past_per_group() -> None:
    now = [1000.0]
    ring = UsageHistory(keep_seconds=60, clock=lambda: now[0])
    ring.add(batch("web", 0.5, 0.25))
    now[0] += 30
    ring.add(batch("web", 0.7, 0.5))
    assert [(p.cpu, p.mem) for p in ring.of_group("web", 0)] == [(0.5, 0.25), (0.7, 0.5)]
    now[0] += 45  # the first is older than a minute now
    assert [p.cpu for p in ring.of_group("web", 0)] == [0.7]
    assert not ring.add_bytes(batch("web", 0.1, 0.1).SerializeToString(), "bay.usage.local.api")
    assert not ring.add_bytes(b"\xff\xff not protobuf", "bay.usage.local.web")
    assert ring.of_group("api", 0) == []


def test_an_events_own_time_given_back_finds_that_event_and_a_microsecond_before_does_not() -> None:
    """The point's time a reader is shown (RFC 3339, microseconds) is the event's time rounded down
    to the microsecond; given back as ``at`` it finds that event, one microsecond less does not
    (float seconds rounded to the nearest microsecond once failed each way in the full run)."""
    from types import SimpleNamespace

    from libs.views.timetravel import _micros
    from services.gateway.timetravel import _when

    for nanos in (0, 1, 499, 500, 501, 999, 123_456_789, 999_999_499, 999_999_500, 999_999_999):
        for seconds in (1_796_418_763, 1_714_564_800):
            time = SimpleNamespace(seconds=seconds, nanos=nanos)
            rec = SimpleNamespace(envelope=SimpleNamespace(time=time))
            event = _micros(rec)  # type: ignore[arg-type]
            shown = _when(event / 1_000_000)  # what group_at reports as the point's time
            until = parse_at(shown.isoformat()).time
            before = parse_at((shown - timedelta(microseconds=1)).isoformat()).time
            assert until is not None and before is not None
            assert event <= round(until * 1_000_000), (seconds, nanos, shown)
            assert event > round(before * 1_000_000), (seconds, nanos, shown)
