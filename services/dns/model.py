"""What DNS knows: a pure fold of group and task events from every cluster.

Groups come from the registry's events (their service, cluster, named ports, whether they have a
health check, their traffic share); tasks from every scheduler's task events (where they run, their
ports, their state and health). A task leaves this state when it ends. Nothing here does I/O.

``on_change(service)`` is called with every service whose answers an event may change; the zone drops
what it built for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bay.v1 import group_pb2, task_pb2

from libs.eventlog.port import EVENT_SUBJECT_ROOT, Record

_GROUP = f"{EVENT_SUBJECT_ROOT}.group."
_TASK = f"{EVENT_SUBJECT_ROOT}.task."
_CLUSTER = f"{EVENT_SUBJECT_ROOT}.cluster."

#: a group label that sets its share of its service's traffic (SRV weights); default: its instances
WEIGHT_LABEL = "bay.dns/weight"

TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED", "ERROR", "LOST", "DROPPED", "GONE", "GONE_BY_OPERATOR"})

_SPEC_EVENTS = ("GroupCreated", "GroupUpdated", "GroupRolledBack")

#: what ``on_change`` is called with when the set of hosts with tasks changes
HOSTS = "\0hosts"


def host_label(host: str) -> str:
    """A host's label under ``host.<cluster>``: its name or address with anything but letters,
    digits and hyphens made a hyphen ("10.0.0.7" -> "10-0-0-7", "agent-1.dc" -> "agent-1-dc")."""
    label = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in host.lower())
    return label.strip("-")[:63] or "host"


@dataclass
class GroupInfo:
    name: str
    cluster: str
    service: str
    health_checked: bool
    protocols: dict[str, str]  # port name -> "tcp" | "udp"
    instances: int
    weight: float | None  # from WEIGHT_LABEL; None: the instance count is the share

    @property
    def share(self) -> float:
        return self.weight if self.weight is not None else float(max(self.instances, 0))


@dataclass
class TaskInfo:
    id: str
    group: str
    cluster: str
    service: str
    host: str  # an IP address or a hostname (Mesos agents)
    hostname: str
    ports: dict[str, int]
    state: str = "STAGING"
    healthy: bool | None = None
    killing: bool = False


@dataclass
class DnsState:
    groups: dict[str, GroupInfo] = field(default_factory=dict)  # live groups
    tasks: dict[str, TaskInfo] = field(default_factory=dict)  # tasks that have not ended
    clusters: set[str] = field(default_factory=set)
    service_groups: dict[str, set[str]] = field(default_factory=dict)  # service -> live groups
    service_tasks: dict[str, set[str]] = field(default_factory=dict)  # service -> tasks
    # (cluster, host label) -> host -> its tasks
    hosts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    on_change: Callable[[str], None] = field(default=lambda service: None, repr=False)
    on_host: Callable[[str], None] = field(default=lambda host: None, repr=False)

    # ---- queries ----

    def why_not_ready(self, task: TaskInfo) -> str:
        """Empty when the task is answered; else why not (for the debug listing)."""
        if task.state != "RUNNING":
            return "not running"
        if task.killing:
            return "being killed"
        g = self.groups.get(task.group)
        if g is not None and g.health_checked:
            if task.healthy is None:
                return "health not checked yet"
            if not task.healthy:
                return "unhealthy"
        elif task.healthy is False:
            return "unhealthy"
        return ""

    def is_ready(self, task: TaskInfo) -> bool:
        if task.state != "RUNNING" or task.killing:
            return False
        g = self.groups.get(task.group)
        return task.healthy is True if g is not None and g.health_checked else task.healthy is not False

    def groups_of(self, service: str, cluster: str | None = None) -> list[GroupInfo]:
        found = (self.groups[n] for n in self.service_groups.get(service, ()))
        return sorted((g for g in found if cluster is None or g.cluster == cluster), key=lambda g: g.name)

    def tasks_of(self, service: str, cluster: str | None = None) -> list[TaskInfo]:
        found = (self.tasks[i] for i in self.service_tasks.get(service, ()))
        return sorted((t for t in found if cluster is None or t.cluster == cluster), key=lambda t: t.id)

    # ---- the fold ----

    def fold(self, rec: Record) -> DnsState:
        subject = rec.subject
        if subject.startswith(_TASK):
            self._task_event(rec)
        elif subject.startswith(_GROUP):
            self._group_event(rec)
        elif subject.startswith(_CLUSTER) and rec.envelope.type == "ClusterRegistered":
            self.clusters.add(group_pb2.ClusterRegistered.FromString(rec.envelope.payload.value).cluster.name)
        return self

    def _group_event(self, rec: Record) -> None:
        env = rec.envelope
        name, kind = env.aggregate_id, env.type
        before = self.groups.get(name)
        if kind in _SPEC_EVENTS:
            spec = getattr(group_pb2, kind).FromString(env.payload.value).spec
            after = GroupInfo(
                name=name,
                cluster=spec.cluster,
                service=spec.service or name,
                health_checked=spec.HasField("health_check") and bool(spec.health_check.protocol),
                protocols={p.name: (p.protocol or "tcp") for p in spec.ports if p.name},
                instances=spec.instances if spec.HasField("instances") else 1,
                weight=_weight(spec.labels.get(WEIGHT_LABEL)),
            )
            self._set_group(before, after)
        elif kind == "GroupScaled" and before is not None:
            before.instances = group_pb2.GroupScaled.FromString(env.payload.value).instances
            self.on_change(before.service)
        elif kind == "GroupDeleted" and before is not None:
            self._set_group(before, None)

    def _set_group(self, before: GroupInfo | None, after: GroupInfo | None) -> None:
        if before is not None:
            members = self.service_groups.get(before.service)
            if members is not None:
                members.discard(before.name)
                if not members:
                    del self.service_groups[before.service]
            del self.groups[before.name]
            self.on_change(before.service)
        if after is not None:
            self.groups[after.name] = after
            self.service_groups.setdefault(after.service, set()).add(after.name)
            self.on_change(after.service)

    def _task_event(self, rec: Record) -> None:
        env = rec.envelope
        task_id, kind, data = env.aggregate_id, env.type, env.payload.value
        if kind == "TaskLaunched":
            if task_id in self.tasks:
                return
            m = task_pb2.TaskLaunched.FromString(data)
            g = self.groups.get(m.group)
            service = m.service or (g.service if g is not None else m.group)
            new = TaskInfo(
                id=task_id,
                group=m.group,
                cluster=m.cluster,
                service=service,
                host=m.host_address or m.hostname,
                hostname=m.hostname,
                ports=dict(m.ports),
            )
            self.tasks[task_id] = new
            self.service_tasks.setdefault(service, set()).add(task_id)
            on_host = self.hosts.setdefault((new.cluster, host_label(new.host)), {})
            on_host[new.host] = on_host.get(new.host, 0) + 1
            if on_host[new.host] == 1:
                self.on_change(HOSTS)
            self.on_host(new.host)
            return  # STAGING: not answered yet, nothing changes
        task = self.tasks.get(task_id)
        if task is None:
            return
        was = self.is_ready(task)
        if kind == "TaskStatusChanged":
            s = task_pb2.TaskStatusChanged.FromString(data)
            if s.state in TERMINAL:
                self._drop(task)
                if was:
                    self.on_change(task.service)
                return
            task.state = s.state
            if s.HasField("healthy"):
                task.healthy = s.healthy
        elif kind == "TaskHealthChanged":
            h = task_pb2.TaskHealthChanged.FromString(data)
            task.healthy = h.healthy if h.HasField("healthy") else None
        elif kind == "TaskKillRequested":
            task.killing = True
        else:
            return
        if self.is_ready(task) != was:
            self.on_change(task.service)

    def _drop(self, task: TaskInfo) -> None:
        del self.tasks[task.id]
        members = self.service_tasks.get(task.service)
        if members is not None:
            members.discard(task.id)
            if not members:
                del self.service_tasks[task.service]
        key = (task.cluster, host_label(task.host))
        on_host = self.hosts.get(key)
        if on_host is not None and task.host in on_host:
            on_host[task.host] -= 1
            if not on_host[task.host]:
                del on_host[task.host]
                if not on_host:
                    del self.hosts[key]
                self.on_change(HOSTS)


def _weight(text: str | None) -> float | None:
    """A weight label that is not a non-negative number is ignored (the registry does not know it)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None
