"""``ClusterStatus``: every group's status and every host's capacity of one cluster, in one answer.

A page of the whole platform (the UI's overview) would otherwise ask for each group's status in
turn; the scheduler holds all of it in memory, so one answer per cluster costs one pass. Used
capacity is what the cluster's live tasks hold (their group's cpus, mem and disk at launch); free is
what the backend offers now (:meth:`~services.scheduler.ports.ClusterBackend.capacity`).
"""

from __future__ import annotations

from collections.abc import Callable

from bay.v1 import scheduler_pb2

from services.scheduler.service_layer.scheduler import Scheduler

GroupStatus = Callable[[Scheduler, str], scheduler_pb2.GroupStatusReply]


async def cluster_status(scheduler: Scheduler, status_of: GroupStatus) -> scheduler_pb2.ClusterStatusReply:
    """``status_of`` is the ``GroupStatus`` answer of one group (``grpc_api.status_of``)."""
    state = scheduler.state
    hosts: dict[str, scheduler_pb2.HostCapacity] = {}

    def host(host_id: str, hostname: str) -> scheduler_pb2.HostCapacity:
        found = hosts.get(host_id)
        if found is None:
            found = hosts[host_id] = scheduler_pb2.HostCapacity(host_id=host_id, hostname=hostname)
        return found

    for free in await scheduler.backend.capacity():  # Mesos: one agent may have several offers
        h = host(free.host_id, free.hostname)
        h.labels.update(free.labels)
        h.cpus_free += free.cpus
        h.mem_free += free.mem
        h.disk_free += free.disk
    for task in state.tasks.values():
        if task.terminal or not task.host_id:
            continue
        h = host(task.host_id, task.hostname)
        h.cpus_used += task.cpus
        h.mem_used += task.mem
        h.disk_used += task.disk
        h.tasks += 1
    names = {g.name for g in state.mine()} | {t.group for t in state.tasks.values() if not t.terminal}
    return scheduler_pb2.ClusterStatusReply(
        cluster=scheduler.cluster,
        sequence=scheduler.projection.sequence,
        groups=[status_of(scheduler, name) for name in sorted(names)],
        hosts=sorted(hosts.values(), key=lambda h: (h.hostname, h.host_id)),
        offer_based=scheduler.backend.offer_based,
    )
