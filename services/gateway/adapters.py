"""Conversion between the REST shapes (``models``) and the registry's and schedulers' wire types
(``bay.v1``). Unix-seconds times become datetimes (UTC), as every time in the REST API."""

from __future__ import annotations

from datetime import UTC, datetime

from bay.v1 import group_pb2, registry_pb2, scheduler_pb2, task_pb2
from google.protobuf import timestamp_pb2

from libs.spec_pb import trusted_spec_from_pb
from services.gateway import models


def _time(ts: timestamp_pb2.Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9, tz=UTC)


def _unix(seconds: float) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else None


def group_from_pb(msg: group_pb2.Group) -> models.Group:
    # the spec model adds every default, so a client reading a group sees the whole effective
    # spec and can send it back as it is (field-by-field conversion: lists of 1,000 groups are common)
    return models.Group(
        spec=trusted_spec_from_pb(msg.spec),
        version=msg.version,
        aggregate_version=msg.aggregate_version,
        created=_time(msg.created),
        updated=_time(msg.updated),
        deleted=msg.deleted,
    )


def reply_from_pb(msg: registry_pb2.GroupReply) -> models.GroupReply:
    return models.GroupReply(group=group_from_pb(msg.group), sequence=msg.sequence, duplicate=msg.duplicate)


def cluster_from_pb(msg: group_pb2.Cluster) -> models.Cluster:
    return models.Cluster(
        name=msg.name,
        backend=msg.backend,
        address=msg.address,
        labels=dict(msg.labels),
        registered=_time(msg.registered),
    )


def cluster_to_pb(req: models.ClusterRequest) -> group_pb2.Cluster:
    return group_pb2.Cluster(name=req.name, backend=req.backend, address=req.address, labels=req.labels)


def build_from_pb(msg: group_pb2.Build) -> models.Build:
    return models.Build(
        id=msg.id,
        image=msg.image,
        commit=msg.commit,
        metadata=dict(msg.metadata),
        registered=_time(msg.registered),
    )


def build_to_pb(req: models.BuildRequest) -> group_pb2.Build:
    return group_pb2.Build(id=req.id, image=req.image, commit=req.commit, metadata=req.metadata)


def task_from_pb(msg: task_pb2.Task) -> models.Task:
    return models.Task(
        id=msg.id,
        group=msg.group,
        group_version=msg.group_version,
        cluster=msg.cluster,
        host_id=msg.host_id,
        hostname=msg.hostname,
        host_address=msg.host_address,
        ports=dict(msg.ports),
        state=msg.state,
        ready=msg.ready,
        healthy=msg.healthy if msg.HasField("healthy") else None,
        health_failures=msg.health_failures,
        launched_at=datetime.fromtimestamp(msg.launched_at, tz=UTC),
        started_at=_unix(msg.started_at),
        updated_at=datetime.fromtimestamp(msg.updated_at, tz=UTC),
        message=msg.message,
        exit_code=msg.exit_code if msg.HasField("exit_code") else None,
        kill_reason=msg.kill_reason,
        cpus=msg.cpus,
        mem=msg.mem,
        disk=msg.disk,
        host_labels=dict(msg.host_labels),
    )


def pending_from_pb(msg: scheduler_pb2.Pending) -> models.Pending:
    return models.Pending(
        count=msg.count,
        reasons=dict(msg.reasons),
        hosts=msg.hosts,
        next_attempt_at=_unix(msg.next_attempt_at),
        backoff_delay=msg.backoff_delay,
        backoff_failures=msg.backoff_failures,
        summary=msg.summary,
    )


def status_from_pb(msg: scheduler_pb2.GroupStatusReply) -> models.GroupStatus:
    return models.GroupStatus(
        group=msg.group,
        cluster=msg.cluster,
        version=msg.version,
        desired=msg.desired,
        staged=msg.staged,
        running=msg.running,
        healthy=msg.healthy,
        unhealthy=msg.unhealthy,
        ready=msg.ready,
        killing=msg.killing,
        has_health_check=msg.has_health_check,
        known=msg.known,
        pending=pending_from_pb(msg.pending),
        sequence=msg.sequence,
    )
