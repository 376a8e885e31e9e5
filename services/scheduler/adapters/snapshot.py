"""The scheduler's snapshot: its folded state as ``bay.v1.SchedulerSnapshot`` (protos/bay/v1/snapshot.proto).

An optimisation only: without one (or with one that does not decode, of another cluster or of an
older format) the scheduler replays the whole log and reaches the same state.
"""

from __future__ import annotations

from collections import deque

from bay.v1 import snapshot_pb2, task_pb2

from libs.events.codec import (
    build_from_pb,
    build_to_pb,
    cluster_from_pb,
    cluster_to_pb,
    target_from_pb,
    target_to_pb,
)
from libs.events.model import PlacementFailed
from libs.spec_pb import spec_to_pb, trusted_spec_from_pb
from libs.views import Cause, Group
from services.scheduler.adapters import codec
from services.scheduler.domain import backoff as bo
from services.scheduler.domain.state import SchedulerState

FORMAT = 3  # 3: groups carry their version targets
_Pb = snapshot_pb2.SchedulerSnapshot


def _cause(c: Cause) -> _Pb.Cause:
    return _Pb.Cause(event_id=c.event_id, correlation_id=c.correlation_id, traceparent=c.traceparent)


def _cause_from(p: _Pb.Cause) -> Cause:
    return Cause(p.event_id, p.correlation_id, p.traceparent)


def encode(state: SchedulerState, sequence: int) -> bytes:
    snap = _Pb(
        sequence=sequence,
        cluster=state.cluster or "",
        framework_id=state.framework_id,
        versions=state.versions,
        format=FORMAT,
    )
    for g in state.groups.values():
        snap.groups.add(
            spec=spec_to_pb(g.spec),
            version=g.version,
            instances=g.instances,
            aggregate_version=g.aggregate_version,
            cause=_cause(g.cause),
            created=g.created,
            updated=g.updated,
            deleted=g.deleted,
            targets=[target_to_pb(t) for t in g.targets],
            deployment=g.deployment,
        )
    for task in state.tasks.values():
        snap.tasks.append(codec.task_to_pb(task, False))
        snap.task_causes[task.id].CopyFrom(_cause(task.cause))
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
    snap.clusters.extend(cluster_to_pb(c) for c in state.clusters.values())
    snap.builds.extend(build_to_pb(b) for b in state.builds.values())
    for group, ids in state.task_view.ended.items():
        snap.ended[group].ids.extend(ids)
    return snap.SerializeToString()


def decode(data: bytes, cluster: str) -> SchedulerState:
    snap = _Pb.FromString(data)
    if snap.cluster != cluster:
        raise ValueError(f"a snapshot of cluster {snap.cluster!r}, not {cluster!r}")
    if snap.format != FORMAT:
        raise ValueError(f"a snapshot of format {snap.format}, not {FORMAT}")
    state = SchedulerState(cluster)
    for g in snap.groups:
        spec = trusted_spec_from_pb(g.spec)
        state.groups[spec.name] = Group(
            spec,
            g.version,
            g.aggregate_version,
            g.created,
            g.updated,
            g.instances,
            g.deleted,
            _cause_from(g.cause),
            tuple(target_from_pb(t) for t in g.targets),
            g.deployment,
        )
    for m in snap.tasks:
        cause = _cause_from(snap.task_causes[m.id]) if m.id in snap.task_causes else Cause()
        state.task_view.add(codec.task_from_pb(m, cause))
    for b in snap.backoff:
        state.backoff[b.group] = bo.GroupBackoff(b.group, b.version, b.failures, b.delay, b.next_attempt_at)
    for p in snap.pending:
        f = p.failure
        state.pending[f.group] = PlacementFailed(f.group, f.count, dict(f.reasons), f.hosts, p.at)
    state.framework_id = snap.framework_id
    state.versions.update(snap.versions)
    for c in snap.clusters:
        state.clusters[c.name] = cluster_from_pb(c)
    for built in snap.builds:
        state.builds[built.id] = build_from_pb(built)
    for group, ids in snap.ended.items():
        state.task_view.ended[group] = deque(ids.ids)
    return state
