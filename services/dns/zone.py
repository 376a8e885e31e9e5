"""The zone: which names exist and what they answer, built from the fold and kept as prebuilt answers.

Names under the origin (default ``bay.internal.``):

- ``<service>.<cluster>``      A/AAAA of the ready tasks in service of every group registering the
                               service there
- ``<service>``                the same across clusters
- ``<group>.group.<cluster>``  one group only (its tasks in service, as under the service name)
- ``v<N>.<group>.group.<cluster>``  the ready tasks of version N of the group, in service or not: how
                               a blue-green "green" version is reached before the switch (the cluster
                               is that version's)
- ``_<port>._tcp|_udp.`` before any of those: SRV, one per ready task, weighted (:mod:`weights`)
- ``<host>.host.<cluster>``    a host's addresses: the SRV targets
- the apex: SOA and NS (``ns.<origin>``, the server's own address)

"In service" is the group's targets' (``libs.views.groups``: the deployer sets them): a task answers
under the service and group names while its version's target is ``in_service`` with a weight other
than 0; a version without a target (being killed) does not. A group migrating between clusters has
targets on both, and is answered in both. SRV weights share an answer among its groups by their
shares, and within a group by its targets' weights (a canary's percent); see :mod:`weights`.

An answer is built when first asked for and kept until an event changes its service (``changed``), so
serving is a dictionary lookup and an event is in the answers as soon as it is folded: a
``GroupRolloutChanged`` (a blue-green switch, a canary step) invalidates every name of its group's
service, versions' names included. A name that does not exist is NXDOMAIN, a name that exists without
records of the type (a service with no ready task, an empty non-terminal) NOERROR with no records;
both carry the SOA for negative caching.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from libs.spec import GroupSpec
from libs.views import Group, Task
from services.dns import wire
from services.dns.hosts import HostBook
from services.dns.model import HOSTS, DnsState, host_label
from services.dns.weights import WEIGHT_TOTAL as WEIGHT_TOTAL
from services.dns.weights import Pool, per_task

ROTATIONS = 8  # prebuilt orders of one answer; queries take them in turn
ROTATION_BYTES = 16_384  # a larger answer keeps two orders only (it goes over TCP anyway)
CACHED_TYPES = frozenset({wire.A, wire.AAAA, wire.SRV, wire.SOA, wire.NS, wire.ANY})
ANSWERED = ("service", "group", "version")  # the kinds of node with tasks' records


@dataclass(frozen=True)
class ZoneConfig:
    origin: str = "bay.internal."
    ttl: int = 5
    ns_addresses: tuple[str, ...] = ("127.0.0.1",)
    serial: int = 1


class Rec(NamedTuple):
    """One record as the debug listing shows it; ``data`` is an address or an SRV's fields."""

    name: str
    rtype: int
    data: str | tuple[int, int, int, str]
    task_id: str = ""


class Node(NamedTuple):
    kind: str  # apex | ns | service | group | version | host | srv | empty
    service: str = ""  # the dependency: a change to this service rebuilds the node's answers
    cluster: str | None = None
    name: str = ""  # group name, host label
    port: str = ""
    proto: str = ""
    target: Node | None = None  # srv: the service, group or version it is under
    version: int = 0  # version: the group's spec version


class Zone:
    def __init__(self, state: DnsState, hosts: HostBook, config: ZoneConfig) -> None:
        self.state = state
        self.hosts = hosts
        self.config = config
        self.origin = config.origin.rstrip(".").lower() + "."
        self.origin_labels = wire.wire_to_labels(wire.name_to_wire(self.origin))
        self.origin_wire = wire.name_to_wire(self.origin)
        self.cache: dict[bytes, wire.Answer] = {}
        self._deps: dict[str, list[bytes]] = {}
        ttl = config.ttl
        self._soa_rdata = wire.soa_rdata(
            wire.name_to_wire("ns." + self.origin),
            wire.name_to_wire("hostmaster." + self.origin),
            config.serial,
            ttl,
        )
        self.builds = 0

    # ---- invalidation (called by the fold) ----

    def changed(self, service: str) -> None:
        cache = self.cache
        for key in self._deps.pop(service, ()):
            cache.pop(key, None)

    def clear(self) -> None:
        """Everything again (a hostname's addresses changed)."""
        self.cache.clear()
        self._deps.clear()

    # ---- answering ----

    def answer(self, key: bytes) -> wire.Answer | None:
        """The answer for a cache key (lowercased name, type, class IN); None if outside the zone."""
        name, qtype = key[:-4], key[-4] << 8 | key[-3]
        labels = wire.wire_to_labels(name)
        n = len(self.origin_labels)
        if len(labels) < n or labels[len(labels) - n :] != self.origin_labels:
            return None
        node = self.node(labels[: len(labels) - n])
        soa_at = 12 + len(name) - len(self.origin_wire)
        if node is None:
            return self._negative(wire.NXDOMAIN, soa_at)
        answers, additional = self.records(node, qtype)
        if answers:
            built = self._positive(answers, additional)
        else:
            built = self._negative(wire.NOERROR, soa_at)
        self.builds += 1
        if qtype in CACHED_TYPES:
            self.cache[key] = built
            self._deps.setdefault(node.service or "", []).append(key)
        return built

    # ---- names ----

    def node(self, rel: list[str]) -> Node | None:
        """What is at a name (relative to the origin, lowercased labels); None: it does not exist."""
        st = self.state
        n = len(rel)
        if n == 0:
            return Node("apex")
        first = rel[0]
        if first.startswith("_"):
            if n >= 3 and rel[1] in ("_tcp", "_udp"):
                target = self.node(rel[2:])
                proto = rel[1][1:]
                if target is not None and target.kind in ANSWERED:
                    if first[1:] in self.port_names(target, proto):
                        return Node("srv", target.service, port=first[1:], proto=proto, target=target)
                return None
            if n >= 2 and first in ("_tcp", "_udp"):
                target = self.node(rel[1:])
                if target is not None and target.kind in ANSWERED and self.port_names(target, first[1:]):
                    return Node("empty", target.service)
            return None
        if n == 1:
            if first in st.service_groups:
                return Node("service", first)
            # keyed by the label: a service of this name created later must replace the cached answer
            if first == "ns":
                return Node("ns", first)
            return Node("empty", first) if first in st.clusters else None
        if n == 2:
            cluster = rel[1]
            if self._in_cluster(first, cluster):
                return Node("service", first, cluster)
            if first in ("group", "host") and cluster in st.clusters:
                return Node("empty", first)
            return None
        if n == 3 and rel[1] == "group":
            g = st.live_group(first)
            if g is not None and rel[2] in g.clusters():
                return Node("group", g.service, rel[2], name=first)
        if n == 4 and rel[2] == "group" and first[:1] == "v":
            return self._version(first[1:], rel[1], rel[3])
        if n == 3 and rel[1] == "host" and (rel[2], first) in st.hosts:
            return Node("host", HOSTS, rel[2], name=first)
        return None

    def _version(self, number: str, group: str, cluster: str) -> Node | None:
        """``v<N>.<group>.group.<cluster>``: a version the group targets, or its current one, in the
        cluster that version runs on."""
        g = self.state.live_group(group)
        if g is None or not (number.isascii() and number.isdigit()) or str(int(number)) != number:
            return None
        version = int(number)
        if version != g.version and g.target(version) is None:
            return None
        if g.spec_of(version).cluster != cluster:
            return None
        return Node("version", g.service, cluster, name=group, version=version)

    def _in_cluster(self, service: str, cluster: str) -> bool:
        """A service exists in a cluster while a live group runs a target there (its tasks alone,
        being killed after the group went, do not keep the name)."""
        st = self.state
        return any(cluster in st.groups[g].clusters() for g in st.service_groups.get(service, ()))

    def port_names(self, node: Node, proto: str) -> set[str]:
        names: set[str] = set()
        for spec in self._specs(node):
            names.update(p.name for p in spec.ports if p.protocol == proto)
        for t in self._tasks(node):
            names.update(p for p in t.ports if self._protocol(t, p) == proto)
        return names

    def _specs(self, node: Node) -> list[GroupSpec]:
        """The specs whose ports the node's SRV names are: its groups' current and targeted ones."""
        if node.kind == "version":
            return [self.state.groups[node.name].spec_of(node.version)]
        return [s for g in self._groups(node) for s in (g.spec, *(t.spec for t in g.targets))]

    def _groups(self, node: Node) -> list[Group]:
        if node.kind == "group":
            return [self.state.groups[node.name]]
        return self.state.groups_of(node.service, node.cluster)

    def _tasks(self, node: Node) -> list[Task]:
        tasks = self.state.tasks_of(node.service, node.cluster)
        if node.kind == "group":
            return [t for t in tasks if t.group == node.name]
        if node.kind == "version":
            return [t for t in tasks if t.group == node.name and t.group_version == node.version]
        return tasks

    def _protocol(self, task: Task, port: str) -> str:
        """A task's port's protocol, as the spec of its version says."""
        g = self.state.groups.get(task.group)
        if g is None:
            return "tcp"
        for p in g.spec_of(task.group_version).ports:
            if p.name == port:
                return p.protocol
        return g.port_protocols.get(port, "tcp")

    # ---- records ----

    def records(self, node: Node, qtype: int) -> tuple[list[Rec], list[Rec]]:
        """(answers, additional) of one type at a node; ANY gives the node's addresses or SRVs."""
        want_a = qtype in (wire.A, wire.ANY)
        want_aaaa = qtype in (wire.AAAA, wire.ANY)
        kind = node.kind
        owner = ""
        if kind == "apex":
            out = []
            if qtype in (wire.SOA, wire.ANY):
                out.append(Rec(self.origin, wire.SOA, "soa"))
            if qtype in (wire.NS, wire.ANY):
                out.append(Rec(self.origin, wire.NS, "ns." + self.origin))
                return out, self._addresses("ns." + self.origin, self.config.ns_addresses, True, True)
            return out, []
        if kind == "ns":
            return self._addresses("ns." + self.origin, self.config.ns_addresses, want_a, want_aaaa), []
        if kind in ANSWERED:
            addresses: dict[str, str] = {}
            for t in self.ready(node):
                for address in self.hosts.addresses(t.host):
                    addresses.setdefault(address, t.id)
            recs = self._addresses(owner, list(addresses), want_a, want_aaaa)
            return [r._replace(task_id=addresses[str(r.data)]) for r in recs], []
        if kind == "host":
            found = self.state.hosts.get((node.cluster or "", node.name), {})
            addrs = [a for host in sorted(found) for a in self.hosts.addresses(host)]
            return self._addresses(owner, list(dict.fromkeys(addrs)), want_a, want_aaaa), []
        if kind == "srv" and qtype in (wire.SRV, wire.ANY):
            return self._srv(node)
        return [], []

    def ready(self, node: Node) -> list[Task]:
        """The tasks a node answers: ready, and in service unless the node names their version."""
        st = self.state
        if node.kind == "version":
            return [t for t in self._tasks(node) if st.is_ready(t)]
        return [t for t in self._tasks(node) if st.is_ready(t) and st.in_service(t)]

    def _addresses(
        self, owner: str, addresses: list[str] | tuple[str, ...], a: bool, aaaa: bool
    ) -> list[Rec]:
        out = []
        for address in addresses:
            v4 = ipaddress.ip_address(address).version == 4
            if (a and v4) or (aaaa and not v4):
                out.append(Rec(owner, wire.A if v4 else wire.AAAA, address))
        return out

    def _srv(self, node: Node) -> tuple[list[Rec], list[Rec]]:
        assert node.target is not None
        pools: dict[tuple[str, int], list[Task]] = {}  # (group, version) -> its serving tasks
        for t in self.ready(node.target):
            if node.port in t.ports and self._protocol(t, node.port) == node.proto:
                if self.hosts.addresses(t.host):
                    pools.setdefault((t.group, t.group_version), []).append(t)
        order = sorted(pools)
        weights = per_task([self._pool(node.target, key, len(pools[key])) for key in order])
        answers: list[Rec] = []
        targets: dict[str, str] = {}
        for key, each in zip(order, weights, strict=True):
            for t, weight in zip(pools[key], each, strict=True):
                target = f"{host_label(t.host)}.host.{t.cluster}.{self.origin}"
                targets.setdefault(target, t.host)
                answers.append(Rec("", wire.SRV, (0, weight, t.ports[node.port], target), t.id))
        additional = []
        for target, host in targets.items():
            additional += self._addresses(target, self.hosts.addresses(host), True, True)
        return answers, additional

    def _pool(self, under: Node, key: tuple[str, int], tasks: int) -> Pool:
        """What weighs the ready tasks of one version of one group (under a version's own name: by
        task count alone)."""
        g = self.state.groups.get(key[0])
        if g is None or under.kind == "version":
            return Pool(key[0], 1.0, None, tasks)
        target = g.target(key[1])
        return Pool(key[0], g.share, target.weight if target is not None else None, tasks)

    # ---- wire ----

    def _positive(self, answers: list[Rec], additional: list[Rec]) -> wire.Answer:
        ttl = self.config.ttl
        encoded = [self._encode(r, ttl) for r in answers]
        extra = [self._encode(r, ttl) for r in additional]
        size = sum(map(len, encoded))
        count = min(len(encoded), ROTATIONS if size <= ROTATION_BYTES else 2)
        step = max(1, len(encoded) // max(count, 1))
        rotations = [encoded[i * step :] + encoded[: i * step] for i in range(count)]
        return wire.Answer.build(wire.NOERROR, rotations, [], extra)

    def _negative(self, rcode: int, soa_at: int) -> wire.Answer:
        owner = bytes((0xC0 | soa_at >> 8, soa_at & 0xFF))
        soa = wire.rr(owner, wire.SOA, self.config.ttl, self._soa_rdata)
        return wire.Answer.build(rcode, [], [soa], [])

    def _encode(self, r: Rec, ttl: int) -> bytes:
        owner = wire.QNAME if not r.name or r.name == self.origin else wire.name_to_wire(r.name)
        if r.rtype == wire.SOA:
            return wire.rr(owner, wire.SOA, ttl, self._soa_rdata)
        if r.rtype == wire.NS:
            return wire.rr(owner, wire.NS, ttl, wire.name_to_wire(str(r.data)))
        if r.rtype == wire.SRV:
            assert isinstance(r.data, tuple)
            priority, weight, port, target = r.data
            return wire.rr(
                owner, wire.SRV, ttl, wire.srv_rdata(priority, weight, port, wire.name_to_wire(target))
            )
        return wire.address_record(owner, str(r.data), ttl)
