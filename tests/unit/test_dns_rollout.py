"""DNS by the groups' version targets (issue 11): who answers under the service name, the versions'
own names, SRV weights of a canary, a blue-green switch and a migration, each read back from wire
replies with dnspython. And the weight arithmetic on its own, with few replicas."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from bay.v1 import group_pb2

from services.dns.listing import service_listing
from services.dns.weights import WEIGHT_TOTAL, Pool, per_task
from tests.unit.test_dns_zone import World, record

ZONE = "bay.internal."


class Rollouts(World):
    """A world whose groups change version and whose targets a deployer sets."""

    def __init__(self) -> None:
        super().__init__()
        self.specs: dict[tuple[str, int], group_pb2.GroupSpec] = {}
        self.state.fold(
            record(
                "bay.ev.cluster.eu",
                group_pb2.ClusterRegistered(cluster=group_pb2.Cluster(name="eu")),
                "cluster",
                "eu",
            )
        )

    def spec(self, name: str, version: int, *, cluster: str = "local", instances: int = 1) -> None:
        spec = group_pb2.GroupSpec(
            name=name, service="web", cluster=cluster, instances=instances, cmd=f"run v{version}"
        )
        spec.ports.add(name="http", protocol="tcp")
        self.specs[(name, version)] = spec
        kind = group_pb2.GroupCreated if version == 1 else group_pb2.GroupUpdated
        self.state.fold(record(f"bay.ev.group.{name}", kind(spec=spec, version=version), "group", name))

    def rollout(self, name: str, *targets: tuple[int, int, bool, float | None]) -> None:
        ev = group_pb2.GroupRolloutChanged(deployment="d1")
        for version, instances, in_service, weight in targets:
            t = ev.targets.add(
                version=version, spec=self.specs[(name, version)], instances=instances, in_service=in_service
            )
            if weight is not None:
                t.weight = weight
        self.state.fold(record(f"bay.ev.group.{name}", ev, "group", name))

    def srv(self, name: str) -> dict[int, int]:
        reply = self.ask(dns.message.make_query(f"_http._tcp.{name}.{ZONE}", "SRV"))
        return {r.port: r.weight for rrset in reply.answer for r in rrset}

    def rcode(self, name: str) -> dns.rcode.Rcode:
        return self.ask(dns.message.make_query(f"{name}.{ZONE}", "A")).rcode()


def test_canary_weight_splits_the_group_and_follows_each_step() -> None:
    w = Rollouts()
    w.spec("web", 1, instances=4)
    for i in range(4):
        w.task("web", f"10.0.0.{i + 1}", 31000 + i, service="web", version=1)
    w.spec("web", 2)  # a new version: the running one stays the only target
    assert w.srv("web.local") == dict.fromkeys(range(31000, 31004), 2500)
    canary = w.task("web", "10.0.1.1", 32000, service="web", version=2)
    assert 32000 not in w.srv("web.local")  # no target yet: not under the service
    w.rollout("web", (1, 4, True, None), (2, 1, True, 20.0))
    assert w.srv("web.local") == {**dict.fromkeys(range(31000, 31004), 2000), 32000: 2000}
    assert w.srv("web.group.local") == w.srv("web.local")  # the group's own name weighs alike
    w.rollout("web", (1, 4, True, None), (2, 1, True, 50.0))  # the next step, answered at once
    assert w.srv("web.local") == {**dict.fromkeys(range(31000, 31004), 1250), 32000: 5000}
    # the canary not ready: its share goes to the stable tasks, nothing is left unanswered
    w.status(canary, "KILLED")
    assert w.srv("web.local") == dict.fromkeys(range(31000, 31004), 2500)


def test_a_weight_of_zero_keeps_a_target_out_of_the_service_name() -> None:
    w = Rollouts()
    w.spec("web", 1, instances=2)
    w.task("web", "10.0.0.1", 31000, service="web", version=1)
    w.spec("web", 2)
    w.task("web", "10.0.0.2", 31001, service="web", version=2)
    w.rollout("web", (1, 1, True, None), (2, 1, True, 0.0))
    assert w.addresses(f"web.local.{ZONE}") == ["10.0.0.1"]
    assert w.srv("web.local") == {31000: WEIGHT_TOTAL}
    assert w.addresses(f"v2.web.group.local.{ZONE}") == ["10.0.0.2"]  # still reached by its own name


def test_blue_green_green_only_by_its_version_name_until_the_switch() -> None:
    w = Rollouts()
    w.spec("web", 1, instances=2)
    for i in range(2):
        w.task("web", f"10.0.0.{i + 1}", 31000 + i, service="web", version=1)
    w.spec("web", 2, instances=2)
    w.rollout("web", (1, 2, True, None), (2, 2, False, None))
    for i in range(2):
        w.task("web", f"10.0.2.{i + 1}", 32000 + i, service="web", version=2)
    blue_ips, green_ips = ["10.0.0.1", "10.0.0.2"], ["10.0.2.1", "10.0.2.2"]
    for name in (f"web.local.{ZONE}", f"web.{ZONE}", f"web.group.local.{ZONE}"):
        assert sorted(w.addresses(name)) == blue_ips, name
    assert sorted(w.addresses(f"v2.web.group.local.{ZONE}")) == green_ips
    assert sorted(w.addresses(f"v1.web.group.local.{ZONE}")) == blue_ips
    assert sorted(w.srv("v2.web.group.local")) == [32000, 32001]
    assert sorted(w.srv("web.local")) == [31000, 31001]
    # the switch: one event moves the service name; the cached answers above do not outlive it
    w.rollout("web", (1, 2, False, None), (2, 2, True, None))
    for name in (f"web.local.{ZONE}", f"web.{ZONE}", f"web.group.local.{ZONE}"):
        assert sorted(w.addresses(name)) == green_ips, name
    assert w.srv("web.local") == {32000: 5000, 32001: 5000}
    assert sorted(w.addresses(f"v1.web.group.local.{ZONE}")) == blue_ips  # kept for an instant rollback
    # blue's target dropped: its tasks are being killed and answer nowhere under the service
    w.rollout("web", (2, 2, True, None))
    assert sorted(w.addresses(f"web.{ZONE}")) == green_ips
    assert w.rcode("v1.web.group.local") == dns.rcode.NXDOMAIN


def test_migration_answers_both_clusters_under_the_service() -> None:
    w = Rollouts()
    w.spec("web", 1, instances=1)
    w.task("web", "10.0.0.1", 31000, service="web", version=1)
    w.spec("web", 2, cluster="eu")
    w.task("web", "10.1.0.1", 32000, service="web", version=2, cluster="eu")
    assert w.addresses(f"web.{ZONE}") == ["10.0.0.1"]  # v2 has no target yet
    w.rollout("web", (1, 1, True, None), (2, 1, True, None))
    assert sorted(w.addresses(f"web.{ZONE}")) == ["10.0.0.1", "10.1.0.1"]
    assert w.addresses(f"web.local.{ZONE}") == ["10.0.0.1"]
    assert w.addresses(f"web.eu.{ZONE}") == ["10.1.0.1"]
    assert w.addresses(f"web.group.eu.{ZONE}") == ["10.1.0.1"]
    assert w.addresses(f"web.group.local.{ZONE}") == ["10.0.0.1"]
    assert w.addresses(f"v2.web.group.eu.{ZONE}") == ["10.1.0.1"]
    assert w.rcode("v2.web.group.local") == dns.rcode.NXDOMAIN  # a version's name is in its cluster
    assert w.srv("web") == {31000: 5000, 32000: 5000}
    w.rollout("web", (1, 0, True, None), (2, 1, True, None))  # drained: the source target goes
    assert w.addresses(f"web.{ZONE}") == ["10.1.0.1"]
    assert w.rcode("web.local") == dns.rcode.NXDOMAIN  # nothing of the service runs there any more


@pytest.mark.parametrize("name", ["v3.web.group.local", "v01.web.group.local", "vx.web.group.local"])
def test_a_version_the_group_does_not_run_has_no_name(name: str) -> None:
    w = Rollouts()
    w.spec("web", 1)
    w.task("web", "10.0.0.1", 31000, service="web", version=1)
    assert w.rcode(name) == dns.rcode.NXDOMAIN
    assert w.addresses(f"v1.web.group.local.{ZONE}") == ["10.0.0.1"]


def test_a_task_of_a_version_without_a_target_is_not_answered() -> None:
    w = Rollouts()
    w.spec("web", 1, instances=2)
    w.task("web", "10.0.0.1", 31000, service="web", version=1)
    w.task("web", "10.0.0.9", 31009, service="web", version=7)  # a version the group never targeted
    assert w.addresses(f"web.local.{ZONE}") == ["10.0.0.1"]
    assert w.srv("web.local") == {31000: WEIGHT_TOTAL}


# ---- the arithmetic ------------------------------------------------------------------------------


def test_one_stable_and_one_canary_at_ten_percent() -> None:
    assert per_task([Pool("web", 1, None, 1), Pool("web", 1, 10, 1)]) == [[9000], [1000]]


def test_three_stable_and_one_canary_at_a_third() -> None:
    stable, canary = per_task([Pool("web", 3, None, 3), Pool("web", 3, 33, 1)])
    assert canary == [3300] and sum(stable) == 6700 and max(stable) - min(stable) <= 1


def test_the_weights_add_up_to_the_total_whatever_the_split() -> None:
    for tasks in range(1, 8):
        for percent in (1, 7, 33, 50, 99):
            out = per_task([Pool("web", 1, None, tasks), Pool("web", 1, percent, 1)])
            assert sum(map(sum, out)) == WEIGHT_TOTAL, (tasks, percent)
            assert min(min(w) for w in out) >= 1


def test_a_weighted_target_without_ready_tasks_gives_its_share_away() -> None:
    assert per_task([Pool("web", 1, None, 2), Pool("web", 1, 20, 0)]) == [[5000, 5000], []]
    # only weighted targets, one of them empty: the other takes the whole group
    assert per_task([Pool("web", 1, 80, 0), Pool("web", 1, 20, 2)]) == [[], [5000, 5000]]


def test_a_canary_at_a_hundred_percent_leaves_the_stable_tasks_weight_one() -> None:
    stable, canary = per_task([Pool("web", 1, None, 3), Pool("web", 1, 100, 1)])
    assert stable == [1, 1, 1] and canary == [WEIGHT_TOTAL]


def test_groups_share_first_then_targets_within_each() -> None:
    # main (share 3) and a second group (share 1) of one service; main runs a 50% canary
    out = per_task([Pool("main", 3, None, 1), Pool("main", 3, 50, 1), Pool("other", 1, None, 2)])
    assert out == [[3750], [3750], [1250, 1250]]
    # a dark group (share 0) stays at 0
    assert per_task([Pool("main", 1, None, 1), Pool("dark", 0, None, 1)]) == [[WEIGHT_TOTAL], [0]]


def test_the_listing_names_versions_and_says_why_a_task_is_out() -> None:
    w = Rollouts()
    w.spec("web", 1)
    w.task("web", "10.0.0.1", 31000, service="web", version=1)
    w.spec("web", 2)
    w.rollout("web", (1, 1, True, None), (2, 1, False, None))
    green = w.task("web", "10.0.2.1", 32000, service="web", version=2)
    found = service_listing(w.zone, "web")
    assert {f"v1.web.group.local.{ZONE}", f"v2.web.group.local.{ZONE}"} <= set(found.names)
    assert (f"v2.web.group.local.{ZONE}", "A", "10.0.2.1", green) in found.records
    assert ("web.local." + ZONE, "A", "10.0.2.1", green) not in found.records
    why = {task_id: reason for task_id, _, _, _, reason, _, _ in found.tasks}
    assert why[green].startswith("version 2 not in service")
