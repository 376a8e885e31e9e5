"""What DNS knows: the shared view of groups and every cluster's tasks (:class:`libs.views.PlatformView`),
indexed the way names are asked for. Nothing here does I/O.

Ended tasks leave at once (DNS keeps no window of them). DNS's own: which live groups and which tasks
register each service, which hosts have tasks, and the callbacks that tell the zone what to forget:
``on_change(service)`` with every service whose answers an event may change, ``on_host(host)`` with a
host a new task runs on (to resolve its name).

A group event (a rollout that moves ``in_service`` or a weight included) calls ``on_change`` with the
group's service, before and after, whether or not the service changed: membership and weights under
the name come from the group's targets, so every answer of the service is rebuilt from the new ones.
"""

from __future__ import annotations

from collections.abc import Callable

from libs.events import Event
from libs.views import WEIGHT_LABEL as WEIGHT_LABEL
from libs.views import Group, PlatformView, Task

#: what ``on_change`` is called with when the set of hosts with tasks changes
HOSTS = "\0hosts"


def host_label(host: str) -> str:
    """A host's label under ``host.<cluster>``: its name or address with anything but letters,
    digits and hyphens made a hyphen ("10.0.0.7" -> "10-0-0-7", "agent-1.dc" -> "agent-1-dc")."""
    label = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in host.lower())
    return label.strip("-")[:63] or "host"


class DnsState(PlatformView):
    def __init__(self) -> None:
        super().__init__(cluster=None, keep_ended=0)
        self.service_groups: dict[str, set[str]] = {}  # service -> its live groups
        self.service_tasks: dict[str, set[str]] = {}  # service -> its tasks
        self._task_service: dict[str, str] = {}  # task id -> the service it is indexed under
        # (cluster, host label) -> host -> its tasks
        self.hosts: dict[tuple[str, str], dict[str, int]] = {}
        self.on_change: Callable[[str], None] = lambda service: None
        self.on_host: Callable[[str], None] = lambda host: None

    # ---- queries ----

    def groups_of(self, service: str, cluster: str | None = None) -> list[Group]:
        """The live groups registering the service (in a cluster: running a target there, so a group
        migrating between two clusters is in both)."""
        found = (self.groups[n] for n in self.service_groups.get(service, ()))
        return sorted((g for g in found if cluster is None or cluster in g.clusters()), key=lambda g: g.name)

    def tasks_of(self, service: str, cluster: str | None = None) -> list[Task]:
        found = (self.tasks[i] for i in self.service_tasks.get(service, ()))
        return sorted((t for t in found if cluster is None or t.cluster == cluster), key=lambda t: t.id)

    def in_service(self, task: Task) -> bool:
        """Whether the task answers under its group's service name (and the group's name): its
        version's target is in service with a weight other than 0. A version without a target any
        more is being killed; so is every task of a deleted group."""
        g = self.groups.get(task.group)
        if g is None:
            return True  # a group this fold has not seen: by readiness alone
        if g.deleted:
            return False
        t = g.target(task.group_version)
        return t is not None and t.in_service and t.weight != 0

    # ---- keeping the indexes ----

    def on_group(self, before: Group | None, after: Group) -> None:
        if before is not None and not before.deleted:
            members = self.service_groups.get(before.service)
            if members is not None:
                members.discard(before.name)
                if not members:
                    del self.service_groups[before.service]
            self.on_change(before.service)
        if not after.deleted:
            self.service_groups.setdefault(after.service, set()).add(after.name)
            if before is None or before.deleted or before.service != after.service:
                self.on_change(after.service)

    def on_task(self, before: Task | None, after: Task, ev: Event) -> None:
        if before is None:
            self._launched(after)
            return  # STAGING: not answered yet, nothing changes
        service = self._task_service.get(after.id, after.service)
        was = self.is_ready(before)
        if after.terminal:
            self._drop(after, service)
            if was:
                self.on_change(service)
        elif self.is_ready(after) != was:
            self.on_change(service)

    def _launched(self, task: Task) -> None:
        g = self.groups.get(task.group)
        service = task.service or (g.service if g is not None else task.group)
        self._task_service[task.id] = service
        self.service_tasks.setdefault(service, set()).add(task.id)
        on_host = self.hosts.setdefault((task.cluster, host_label(task.host)), {})
        on_host[task.host] = on_host.get(task.host, 0) + 1
        if on_host[task.host] == 1:
            self.on_change(HOSTS)
        self.on_host(task.host)

    def _drop(self, task: Task, service: str) -> None:
        self._task_service.pop(task.id, None)
        members = self.service_tasks.get(service)
        if members is not None:
            members.discard(task.id)
            if not members:
                del self.service_tasks[service]
        key = (task.cluster, host_label(task.host))
        on_host = self.hosts.get(key)
        if on_host is not None and task.host in on_host:
            on_host[task.host] -= 1
            if not on_host[task.host]:
                del on_host[task.host]
                if not on_host:
                    del self.hosts[key]
                self.on_change(HOSTS)
