"""What the server would answer for a service, for people debugging discovery (gRPC, REST, CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field

from libs.views import Task
from services.dns import wire
from services.dns.zone import Node, Rec, Zone

TYPE_NAMES = {wire.A: "A", wire.AAAA: "AAAA", wire.SRV: "SRV"}


@dataclass
class Listing:
    exists: bool
    names: list[str] = field(default_factory=list)
    records: list[tuple[str, str, str, str]] = field(default_factory=list)  # name, type, data, task
    tasks: list[tuple[str, str, str, str, str, list[str], dict[str, int]]] = field(default_factory=list)
    groups: list[tuple[str, str, float, bool]] = field(default_factory=list)


def service_listing(zone: Zone, service: str, cluster: str = "") -> Listing:
    st = zone.state
    service = service.lower()
    scope = cluster.lower() or None
    groups = st.groups_of(service, scope)
    tasks = st.tasks_of(service, scope)
    clusters = sorted({c for g in groups for c in g.clusters()} | {t.cluster for t in tasks})
    if scope is not None:
        clusters = [c for c in clusters if c == scope]
    out = Listing(exists=bool(groups))
    nodes: list[tuple[str, Node]] = []
    for c in clusters:
        nodes.append((f"{service}.{c}.{zone.origin}", Node("service", service, c)))
    if scope is None and clusters:
        nodes.append((f"{service}.{zone.origin}", Node("service", service)))
    for g in groups:
        for c in sorted(g.clusters()):
            if scope is None or c == scope:
                nodes.append((f"{g.name}.group.{c}.{zone.origin}", Node("group", service, c, g.name)))
        for vt in g.targets:  # each version's own name (a blue-green "green" before the switch)
            c = vt.spec.cluster
            if scope is None or c == scope:
                node = Node("version", service, c, g.name, version=vt.version)
                nodes.append((f"v{vt.version}.{g.name}.group.{c}.{zone.origin}", node))
    for name, node in list(nodes):
        for proto in ("tcp", "udp"):
            for port in sorted(zone.port_names(node, proto)):
                srv = Node("srv", service, port=port, proto=proto, target=node)
                nodes.append((f"_{port}._{proto}.{name}", srv))
    for name, node in nodes:
        out.names.append(name)
        for qtype in (wire.SRV,) if node.kind == "srv" else (wire.A, wire.AAAA):
            answers, _ = zone.records(node, qtype)
            out.records += [_row(name, r) for r in answers]
    for t in tasks:
        why = st.why_not_ready(t)
        if not why and not st.in_service(t):
            why = _out_of_service(zone, t)
        addresses = list(zone.hosts.addresses(t.host))
        if not why and not addresses:
            why = f"host {t.host} unresolved"
        out.tasks.append((t.id, t.group, t.cluster, t.state, why, addresses, dict(t.ports)))
    for g in groups:
        out.groups.append((g.name, g.cluster, g.share, g.health_checked))
    return out


def _out_of_service(zone: Zone, task: Task) -> str:
    g = zone.state.groups.get(task.group)
    target = g.target(task.group_version) if g is not None and not g.deleted else None
    v = task.group_version
    if target is None:
        return f"version {v} is not a target (being replaced)"
    if target.weight == 0:
        return f"version {v} has weight 0 (answered as v{v}.{task.group}.group.{task.cluster} only)"
    return f"version {v} not in service (answered as v{v}.{task.group}.group.{task.cluster} only)"


def _row(name: str, r: Rec) -> tuple[str, str, str, str]:
    if isinstance(r.data, tuple):
        priority, weight, port, target = r.data
        data = f"{priority} {weight} {port} {target}"
    else:
        data = r.data
    return name, TYPE_NAMES.get(r.rtype, str(r.rtype)), data, r.task_id
