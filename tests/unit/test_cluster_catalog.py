"""Registering a cluster: what is a change, what is a repeat and what conflicts (pure domain), and
that a cluster's scheduler address survives the registry's event and snapshot codecs."""

from __future__ import annotations

import pytest

from libs.errors import Conflict, ValidationFailed
from libs.eventlog.port import Record
from libs.events import EventMeta, make_envelope, to_pb
from services.registry.adapters.codec import decode_snapshot, encode_snapshot
from services.registry.domain.catalog import Cluster, ClusterRegistered, RegisterCluster, decide_cluster
from services.registry.domain.registry import RegistryState


def registered(state: RegistryState, seq: int, cluster: Cluster, at: float) -> RegistryState:
    """Fold a ClusterRegistered through its wire form, as the registry reads it back."""
    env = make_envelope(
        to_pb(ClusterRegistered(cluster)),
        aggregate_type="cluster",
        aggregate_id=cluster.name,
        aggregate_version=seq,
        meta=EventMeta(),
        now=at,
    )
    return state.fold(Record(seq, f"bay.ev.cluster.{cluster.name}", env))


LOCAL = Cluster("local", "local", scheduler_address="127.0.0.1:50061")


def test_first_registration_records_the_scheduler() -> None:
    assert decide_cluster(None, RegisterCluster(LOCAL)) == [ClusterRegistered(LOCAL)]


def test_a_moved_scheduler_is_a_change() -> None:
    moved = Cluster("local", "local", scheduler_address="127.0.0.1:50099")
    assert decide_cluster(LOCAL, RegisterCluster(moved)) == [ClusterRegistered(moved)]


@pytest.mark.parametrize("again", ["127.0.0.1:50061", ""], ids=["same", "not-said"])
def test_a_repeat_or_an_unsaid_scheduler_changes_nothing(again: str) -> None:
    assert decide_cluster(LOCAL, RegisterCluster(Cluster("local", "local", scheduler_address=again))) == []


def test_another_backend_still_conflicts_whatever_the_scheduler() -> None:
    other = Cluster("local", "mesos", "http://m:5050", scheduler_address="127.0.0.1:50099")
    with pytest.raises(Conflict):
        decide_cluster(LOCAL, RegisterCluster(other))


@pytest.mark.parametrize("bad", ["127.0.0.1", "host:0", "host:70000", "a b:1", "http://h:1"])
def test_the_scheduler_address_must_be_host_port(bad: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        decide_cluster(None, RegisterCluster(Cluster("local", "local", scheduler_address=bad)))
    assert [v.field for v in info.value.violations] == ["cluster.scheduler_address"]


def test_a_later_registration_keeps_the_first_time_and_survives_the_codecs() -> None:
    state = RegistryState()
    state = registered(state, 1, LOCAL, 100.0)
    moved = Cluster("local", "local", scheduler_address="[::1]:50099")
    state = registered(state, 2, moved, 200.0)
    assert state.clusters["local"] == Cluster(
        "local", "local", registered=100.0, scheduler_address="[::1]:50099"
    )
    assert decode_snapshot(encode_snapshot(state, 2)).clusters == state.clusters
