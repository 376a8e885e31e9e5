"""The scheduler's snapshot: its folded state as ``bay.v1.SchedulerSnapshot`` (protos/bay/v1/snapshot.proto).

An optimisation only: without one (or with one that does not decode, or of another cluster) the
scheduler replays the whole log and reaches the same state.
"""

from __future__ import annotations

from collections import deque

from bay.v1 import group_pb2, snapshot_pb2, task_pb2

from libs.spec_pb import spec_to_pb, trusted_spec_from_pb
from services.scheduler import codec
from services.scheduler.domain import backoff as bo
from services.scheduler.domain import tasks as t
from services.scheduler.ports import TaskState
from services.scheduler.state import GroupEntry, SchedulerState


def encode(state: SchedulerState, sequence: int) -> bytes:
    snap = snapshot_pb2.SchedulerSnapshot(
        sequence=sequence, cluster=state.cluster, builds=state.builds, framework_id=state.framework_id
    )
    for g in state.groups.values():
        snap.groups.add(spec=spec_to_pb(g.spec), version=g.version, instances=g.instances)
    for task in state.tasks.values():
        snap.tasks.append(codec.task_to_pb(task, state.cluster, state.addresses.get(task.id, ""), False))
    for b in state.backoff.values():
        snap.backoff.add(
            group=b.group,
            version=b.version,
            failures=b.failures,
            delay=b.delay,
            next_attempt_at=b.next_attempt_at,
        )
    for f in state.pending.values():
        failure = task_pb2.PlacementFailed(
            group=f.group, count=f.count, reasons=dict(f.reasons), hosts=f.hosts
        )
        snap.pending.add(failure=failure, at=f.at)
    for name, (backend, address) in state.clusters.items():
        snap.clusters.append(group_pb2.Cluster(name=name, backend=backend, address=address))
    for group, ids in state.ended.items():
        snap.ended[group].ids.extend(ids)
    return snap.SerializeToString()


def decode(data: bytes, cluster: str) -> SchedulerState:
    snap = snapshot_pb2.SchedulerSnapshot.FromString(data)
    if snap.cluster != cluster:
        raise ValueError(f"a snapshot of cluster {snap.cluster!r}, not {cluster!r}")
    state = SchedulerState(cluster)
    for g in snap.groups:
        spec = trusted_spec_from_pb(g.spec)
        state.groups[spec.name] = GroupEntry(spec, g.version, g.instances)
    state.builds.update(snap.builds)
    for m in snap.tasks:
        task = t.Task(
            id=m.id,
            group=m.group,
            group_version=m.group_version,
            host_id=m.host_id,
            hostname=m.hostname,
            ports=dict(m.ports),
            state=TaskState(m.state),
            launched_at=m.launched_at,
            updated_at=m.updated_at,
            host_labels=dict(m.host_labels),
            cpus=m.cpus,
            mem=m.mem,
            disk=m.disk,
            healthy=m.healthy if m.HasField("healthy") else None,
            health_failures=m.health_failures,
            started_at=m.started_at or None,
            message=m.message,
            exit_code=m.exit_code if m.HasField("exit_code") else None,
            kill_reason=m.kill_reason,
        )
        state.tasks[task.id] = task
        state.addresses[task.id] = m.host_address
        state.by_group.setdefault(task.group, set()).add(task.id)
    for b in snap.backoff:
        state.backoff[b.group] = bo.GroupBackoff(b.group, b.version, b.failures, b.delay, b.next_attempt_at)
    for p in snap.pending:
        f = p.failure
        state.pending[f.group] = t.PlacementFailed(f.group, f.count, dict(f.reasons), f.hosts, p.at)
    state.framework_id = snap.framework_id
    for c in snap.clusters:
        state.clusters[c.name] = (c.backend, c.address)
    for group, ids in snap.ended.items():
        state.ended[group] = deque(ids.ids)
    return state
