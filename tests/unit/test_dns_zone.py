"""The DNS fold, zone and responder without sockets: queries in, wire replies out, read back with
dnspython."""

from __future__ import annotations

import itertools

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from bay.v1 import group_pb2, task_pb2
from google.protobuf import message

from libs.eventlog.port import Record
from libs.events import EventMeta, make_envelope
from services.dns.hosts import HostBook
from services.dns.model import DnsState, host_label
from services.dns.responder import Responder
from services.dns.zone import Zone, ZoneConfig

_seq = itertools.count(1)


_versions: dict[str, int] = {}


def record(subject: str, event: message.Message, kind: str, ident: str) -> Record:
    _versions[subject] = version = _versions.get(subject, 0) + 1
    env = make_envelope(
        event, aggregate_type=kind, aggregate_id=ident, aggregate_version=version, meta=EventMeta()
    )
    return Record(next(_seq), subject, env)


class World:
    def __init__(self, **hosts: tuple[str, ...]) -> None:
        self.state = DnsState()
        self.zone = Zone(self.state, HostBook(dict(hosts)), ZoneConfig(ttl=5))
        self.state.on_change = self.zone.changed
        self.responder = Responder(self.zone)
        self.ids = itertools.count()
        self.clusters: dict[str, str] = {}  # task id -> its cluster
        self.state.fold(
            record(
                "bay.ev.cluster.local",
                group_pb2.ClusterRegistered(cluster=group_pb2.Cluster(name="local")),
                "cluster",
                "local",
            )
        )

    def group(
        self,
        name: str,
        *,
        service: str = "",
        health: bool = False,
        instances: int = 1,
        labels: dict[str, str] | None = None,
    ) -> None:
        spec = group_pb2.GroupSpec(
            name=name, service=service, cluster="local", instances=instances, labels=labels or {}, cmd="run"
        )
        spec.ports.add(name="http", protocol="tcp")
        if health:
            spec.health_check.protocol = "http"
        self.state.fold(
            record(f"bay.ev.group.{name}", group_pb2.GroupCreated(spec=spec, version=1), "group", name)
        )

    def task(
        self,
        group: str,
        address: str,
        port: int,
        *,
        service: str = "",
        state: str = "RUNNING",
        version: int = 1,
        cluster: str = "local",
    ) -> str:
        task_id = f"{group}.{next(self.ids)}"
        self.clusters[task_id] = cluster
        launched = task_pb2.TaskLaunched(
            group=group,
            group_version=version,
            cluster=cluster,
            host_address=address,
            ports={"http": port},
            service=service or group,
        )
        self.state.fold(record(f"bay.ev.task.{cluster}.{task_id}", launched, "task", task_id))
        if state:
            self.status(task_id, state)
        return task_id

    def status(self, task_id: str, state: str) -> None:
        ev = task_pb2.TaskStatusChanged(state=state)
        self.state.fold(record(f"bay.ev.task.{self.clusters[task_id]}.{task_id}", ev, "task", task_id))

    def health(self, task_id: str, healthy: bool) -> None:
        ev = task_pb2.TaskHealthChanged(healthy=healthy)
        self.state.fold(record(f"bay.ev.task.{self.clusters[task_id]}.{task_id}", ev, "task", task_id))

    def ask(self, query: dns.message.Message, tcp: bool = False) -> dns.message.Message:
        out = self.responder.fast(query.to_wire(), tcp)
        assert out is not None, "not answered by the fast path"
        return dns.message.from_wire(out)

    def addresses(self, name: str) -> list[str]:
        reply = self.ask(dns.message.make_query(name, "A"))
        return [r.address for rrset in reply.answer for r in rrset]


def test_the_reply_echoes_the_question_as_asked_and_the_rd_bit() -> None:
    w = World()
    w.group("web")
    w.task("web", "10.0.0.1", 31000)
    q = dns.message.make_query("wEb.LoCaL.bay.INTERNAL.", "A")  # 0x20 case randomisation
    q.flags &= ~dns.flags.RD
    reply = w.ask(q)
    assert str(reply.question[0].name) == "wEb.LoCaL.bay.INTERNAL." and reply.id == q.id
    assert not reply.flags & dns.flags.RD and reply.flags & dns.flags.AA and reply.edns < 0
    with_rd = w.ask(dns.message.make_query("web.local.bay.internal.", "A", use_edns=0, payload=1400))
    assert with_rd.flags & dns.flags.RD and with_rd.edns == 0 and with_rd.payload == 1232


def test_a_type_whose_code_is_a_letter_is_not_confused() -> None:
    # type 65 (HTTPS) is the byte "A": lowercasing the whole question would make it type 97
    w = World()
    w.group("web")
    w.task("web", "10.0.0.1", 31000)
    reply = w.ask(dns.message.make_query("web.local.bay.internal.", "HTTPS"))
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer and reply.authority


def test_an_event_changes_the_cached_answer_at_once() -> None:
    w = World()
    w.group("web", health=True)
    a = w.task("web", "10.0.0.1", 31000)
    b = w.task("web", "10.0.0.2", 31001)
    assert w.addresses("web.local.bay.internal.") == []  # checked group, health unknown
    w.health(a, True)
    assert w.addresses("web.local.bay.internal.") == ["10.0.0.1"]
    assert w.addresses("web.local.bay.internal.") == ["10.0.0.1"]  # from the cache now
    w.health(b, True)
    assert sorted(w.addresses("web.local.bay.internal.")) == ["10.0.0.1", "10.0.0.2"]
    w.health(a, False)
    assert w.addresses("web.local.bay.internal.") == ["10.0.0.2"]
    w.status(b, "KILLED")
    assert w.addresses("web.local.bay.internal.") == []
    assert b not in w.state.tasks


def test_unhealthy_from_mesos_counts_even_without_a_check() -> None:
    w = World()
    w.group("plain")
    t = w.task("plain", "10.0.0.1", 31000)
    assert w.addresses("plain.local.bay.internal.") == ["10.0.0.1"]
    w.health(t, False)
    assert w.addresses("plain.local.bay.internal.") == []
    assert w.state.why_not_ready(w.state.tasks[t]) == "unhealthy"


def test_weights_follow_group_shares() -> None:
    w = World()
    w.group("main", service="svc", instances=4)
    w.group("canary", service="svc", instances=1)
    for i in range(2):  # half of main is up: each of its tasks carries twice the weight
        w.task("main", f"10.0.0.{i + 1}", 31000 + i, service="svc")
    w.task("canary", "10.0.1.1", 32000, service="svc")
    reply = w.ask(dns.message.make_query("_http._tcp.svc.local.bay.internal.", "SRV"))
    weights = {r.port: r.weight for rrset in reply.answer for r in rrset}
    assert weights == {31000: 4000, 31001: 4000, 32000: 2000}


def test_a_zero_weight_label_keeps_a_group_out_of_the_traffic_share() -> None:
    w = World()
    w.group("main", service="svc", labels={"bay.dns/weight": "1"})
    w.group("dark", service="svc", labels={"bay.dns/weight": "0"})
    w.task("main", "10.0.0.1", 31000, service="svc")
    w.task("dark", "10.0.0.2", 31001, service="svc")
    reply = w.ask(dns.message.make_query("_http._tcp.svc.local.bay.internal.", "SRV"))
    assert {r.port: r.weight for rrset in reply.answer for r in rrset} == {31000: 10000, 31001: 0}


def test_truncation_keeps_whole_records_and_sets_tc() -> None:
    w = World()
    w.group("big")
    for i in range(100):
        w.task("big", f"10.0.{i // 200}.{i % 200 + 1}", 31000)
    udp = w.ask(dns.message.make_query("big.local.bay.internal.", "A"))
    assert udp.flags & dns.flags.TC and 0 < len(udp.answer[0]) < 100
    whole = w.ask(dns.message.make_query("big.local.bay.internal.", "A"), tcp=True)
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 100


@pytest.mark.parametrize(
    ("name", "rcode", "soa"),
    [
        ("missing.local.bay.internal.", dns.rcode.NXDOMAIN, True),
        ("web.nowhere.bay.internal.", dns.rcode.NXDOMAIN, True),
        ("local.bay.internal.", dns.rcode.NOERROR, True),  # an empty non-terminal
        ("group.local.bay.internal.", dns.rcode.NOERROR, True),
        ("x.web.group.local.bay.internal.", dns.rcode.NXDOMAIN, True),
        ("_http._udp.web.local.bay.internal.", dns.rcode.NXDOMAIN, True),  # http is a tcp port
    ],
)
def test_negative_answers(name: str, rcode: dns.rcode.Rcode, soa: bool) -> None:
    w = World()
    w.group("web")
    reply = w.ask(dns.message.make_query(name, "A"))
    assert reply.rcode() == rcode and not reply.answer
    assert [rrset.rdtype for rrset in reply.authority] == [dns.rdatatype.SOA]
    assert str(reply.authority[0].name) == "bay.internal."


def test_names_outside_the_zone_go_to_the_slow_path() -> None:
    w = World()
    assert w.responder.fast(dns.message.make_query("example.com.", "A").to_wire()) is None
    assert w.responder.fast(dns.message.make_query("bay.internal.evil.", "A").to_wire()) is None


async def test_the_slow_path_refuses_outside_names_without_upstreams() -> None:
    w = World()
    q = dns.message.make_query("example.com.", "A")
    out = await w.responder.slow(q.to_wire(), "127.0.0.1")
    assert out is not None and dns.message.from_wire(out).rcode() == dns.rcode.REFUSED
    other = dns.message.make_query("web.local.bay.internal.", "A")
    other.set_opcode(dns.opcode.NOTIFY)
    out = await w.responder.slow(other.to_wire(), "127.0.0.1")
    assert out is not None and dns.message.from_wire(out).rcode() == dns.rcode.NOTIMP
    badvers = dns.message.make_query("web.local.bay.internal.", "A", use_edns=1)
    out = await w.responder.slow(badvers.to_wire(), "127.0.0.1")
    assert out is not None and dns.message.from_wire(out).rcode() == dns.rcode.BADVERS


def test_hostnames_resolve_through_the_host_book_and_host_names_exist() -> None:
    w = World(**{"agent-1.dc": ("10.5.0.1",)})
    w.group("m")
    w.task("m", "agent-1.dc", 31000)
    assert w.addresses("m.local.bay.internal.") == ["10.5.0.1"]
    assert w.addresses(f"{host_label('agent-1.dc')}.host.local.bay.internal.") == ["10.5.0.1"]
    assert host_label("10.0.0.7") == "10-0-0-7" and host_label("Agent_1.DC") == "agent-1-dc"


def test_a_service_named_like_a_cluster_replaces_the_cached_empty_name() -> None:
    w = World()
    assert w.addresses("local.bay.internal.") == []  # the cluster: an empty non-terminal, cached
    w.group("local-svc", service="local")
    w.task("local-svc", "10.0.0.9", 31000, service="local")
    assert w.addresses("local.bay.internal.") == ["10.0.0.9"]  # now the service of that name
