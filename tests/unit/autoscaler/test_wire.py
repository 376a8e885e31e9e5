"""The autoscaler's messages <-> its domain: defaults, field paths of violations, decisions and the
window state round trip, and the events through the one decoder of libs.events."""

from __future__ import annotations

from bay.v1 import autoscale_pb2

from libs.eventlog.port import Record
from libs.events import EventMeta, decode, make_envelope, subjects, to_pb
from libs.events import model as m
from services.autoscaler.adapters.wire import (
    decision_from_pb,
    decision_to_pb,
    policy_from_pb,
    resolved_pb,
    violations,
    window_from_pb,
    window_to_pb,
)
from services.autoscaler.domain import DownBehaviour, Observation, Policy, State, UpBehaviour, step, uniform


def _policy(**changes: object) -> autoscale_pb2.AutoscalePolicy:
    p = autoscale_pb2.AutoscalePolicy(
        group="web", min=1, max=10, metrics=[autoscale_pb2.MetricTarget(kind="cpu", target=0.5)]
    )
    for k, v in changes.items():
        setattr(p, k, v)
    return p


def test_unset_fields_are_the_domains_defaults() -> None:
    policy = policy_from_pb(_policy())
    assert policy == Policy(1, 10, policy.metrics, UpBehaviour(), DownBehaviour(), 0.1)
    assert policy.metrics[0].source == "usage"
    given = _policy()
    given.up.window_seconds = 2
    given.down.min_step = 3
    given.tolerance = 0.2
    p = policy_from_pb(given)
    assert (p.up.window_s, p.down.min_step, p.tolerance) == (2, 3, 0.2)
    resolved = resolved_pb(_policy())
    assert resolved.down.window_seconds == 300 and resolved.up.panic_threshold == 2
    assert policy_from_pb(resolved) == policy


def test_violations_name_the_messages_fields() -> None:
    bad = _policy(max=0, group="")
    bad.metrics[0].target = 0
    bad.up.window_seconds = -1
    bad.metrics.add(kind="backlog", target=5)
    bad.metrics.add(kind="custom", name="rps", target=1, prometheus=autoscale_pb2.PrometheusSource())
    fields = {v.field for v in violations(bad)}
    assert {
        "group",
        "max",
        "metrics.0.target",
        "up.window_seconds",
        "metrics.1.backlog",
        "metrics.2.prometheus.port_name",
        "metrics.2.prometheus.metric",
    } <= fields, fields
    assert violations(_policy()) == []


def test_a_decision_and_the_windows_round_trip() -> None:
    policy = policy_from_pb(_policy())
    state = State.initial(policy)
    d = None
    for i in range(5):
        obs: Observation = uniform(2, 2, {"cpu": 0.9 if i < 3 else 0.2})
        d, state = step(policy, state, obs, 1_700_000_000.0 + i)
    assert d is not None
    assert decision_from_pb(decision_to_pb(d)) == d
    assert window_from_pb(window_to_pb(state)) == state


def test_the_events_go_through_the_one_decoder() -> None:
    events: list[m.AutoscaleEvent] = [
        m.AutoscalePolicySet(resolved_pb(_policy())),
        m.AutoscalePolicyRemoved("ops"),
        m.AutoscaleWindow(window_to_pb(State())),
    ]
    for i, event in enumerate(events, 1):
        env = make_envelope(
            to_pb(event), aggregate_type=subjects.AUTOSCALE, aggregate_id="web",
            aggregate_version=i, meta=EventMeta.command("t"), now=1_700_000_000.0,
        )  # fmt: skip
        ev = decode(Record(i, subjects.autoscale("web"), env, {}))
        assert ev.data == event
