"""Typed event values <-> their protobuf payloads: the one decoder of the log's events.

``DECODERS`` maps an envelope's type name to a function of (payload bytes, aggregate id, time) that
returns the typed value; ``to_pb`` is the other way. A type not here is not an event Bay knows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bay.v1 import group_pb2, task_pb2
from google.protobuf import message, timestamp_pb2

from libs.events import model as m
from libs.events.autoscale_codec import AUTOSCALE_PAYLOADS, autoscale_to_pb
from libs.events.deploy_codec import DEPLOYMENT_PAYLOADS, deployment_to_pb
from libs.spec_pb import spec_to_pb, trusted_spec_from_pb


def _ts(out: timestamp_pb2.Timestamp, seconds: float) -> None:
    out.FromNanoseconds(int(seconds * 1e9))


def cluster_to_pb(c: m.Cluster) -> group_pb2.Cluster:
    out = group_pb2.Cluster(
        name=c.name,
        backend=c.backend,
        address=c.address,
        labels=dict(c.labels),
        scheduler_address=c.scheduler_address,
    )
    if c.registered:
        _ts(out.registered, c.registered)
    return out


def cluster_from_pb(p: group_pb2.Cluster) -> m.Cluster:
    registered = p.registered.ToNanoseconds() / 1e9
    return m.Cluster(p.name, p.backend, p.address, dict(p.labels), registered, p.scheduler_address)


def build_to_pb(b: m.Build) -> group_pb2.Build:
    out = group_pb2.Build(
        id=b.id,
        image=b.image,
        commit=b.commit,
        metadata=dict(b.metadata),
        cmd=b.cmd,
        branch=b.branch,
        built_by=b.built_by,
    )
    if b.artifact is not None:
        a = b.artifact
        out.artifact.CopyFrom(
            group_pb2.Artifact(uri=a.uri, sha256=a.sha256, extract=a.extract, executable=a.executable)
        )
    if b.registered:
        _ts(out.registered, b.registered)
    return out


def build_from_pb(p: group_pb2.Build) -> m.Build:
    a = p.artifact
    artifact = m.Artifact(a.uri, a.sha256, a.extract, a.executable) if p.HasField("artifact") else None
    return m.Build(
        p.id, p.image, p.commit, dict(p.metadata), p.registered.ToNanoseconds() / 1e9,
        artifact, p.cmd, p.branch, p.built_by,
    )  # fmt: skip


def target_to_pb(t: m.VersionTarget) -> group_pb2.VersionTarget:
    out = group_pb2.VersionTarget(
        version=t.version, spec=spec_to_pb(t.spec), instances=t.instances, in_service=t.in_service
    )
    if t.weight is not None:
        out.weight = t.weight
    return out


def target_from_pb(p: group_pb2.VersionTarget) -> m.VersionTarget:
    weight = p.weight if p.HasField("weight") else None
    return m.VersionTarget(p.version, trusted_spec_from_pb(p.spec), p.instances, p.in_service, weight)


def _rollout(p: Any, ident: str, at: float) -> m.GroupRolloutChanged:
    return m.GroupRolloutChanged(tuple(target_from_pb(t) for t in p.targets), p.deployment, p.reason)


def to_pb(event: m.EventData) -> message.Message:
    """The payload of an event."""
    match event:
        case m.GroupCreated(spec, version):
            return group_pb2.GroupCreated(spec=spec_to_pb(spec), version=version)
        case m.GroupUpdated(spec, version):
            return group_pb2.GroupUpdated(spec=spec_to_pb(spec), version=version)
        case m.GroupScaled(instances, previous, reason):
            return group_pb2.GroupScaled(instances=instances, previous=previous, reason=reason)
        case m.GroupRolledBack(spec, version, restored):
            return group_pb2.GroupRolledBack(
                spec=spec_to_pb(spec), version=version, restored_version=restored
            )
        case m.GroupDeleted(version):
            return group_pb2.GroupDeleted(version=version)
        case m.GroupRolloutChanged(targets, deployment, reason):
            return group_pb2.GroupRolloutChanged(
                targets=[target_to_pb(t) for t in targets], deployment=deployment, reason=reason
            )
        case m.ClusterRegistered(cluster):
            return group_pb2.ClusterRegistered(cluster=cluster_to_pb(cluster))
        case m.BuildRegistered(build):
            return group_pb2.BuildRegistered(build=build_to_pb(build))
        case m.NothingChanged(command):
            return group_pb2.NothingChanged(command=command)
    return _scheduler_to_pb(event)


def _scheduler_to_pb(event: m.EventData) -> message.Message:
    if isinstance(event, m.TaskLaunched):
        return task_pb2.TaskLaunched(
            group=event.group,
            group_version=event.group_version,
            cluster=event.cluster,
            host_id=event.host_id,
            hostname=event.hostname,
            host_address=event.host_address,
            ports=dict(event.ports),
            cpus=event.cpus,
            mem=event.mem,
            disk=event.disk,
            host_labels=dict(event.host_labels),
            service=event.service,
        )
    if isinstance(event, m.TaskStatusChanged):
        st = task_pb2.TaskStatusChanged(state=event.state.value, reason=event.reason, message=event.message)
        if event.exit_code is not None:
            st.exit_code = event.exit_code
        if event.healthy is not None:
            st.healthy = event.healthy
        return st
    if isinstance(event, m.TaskHealthChanged):
        hc = task_pb2.TaskHealthChanged(failures=event.failures, message=event.message)
        if event.healthy is not None:
            hc.healthy = event.healthy
        return hc
    if isinstance(event, m.TaskKillRequested):
        return task_pb2.TaskKillRequested(reason=event.reason, drain_until=event.drain_until)
    if isinstance(event, m.PlacementFailed):
        return task_pb2.PlacementFailed(
            group=event.group, count=event.count, reasons=dict(event.reasons), hosts=event.hosts
        )
    if isinstance(event, m.GroupBackoffChanged):
        return task_pb2.GroupBackoffChanged(
            group=event.group,
            version=event.version,
            failures=event.failures,
            delay=event.delay,
            next_attempt_at=event.next_attempt_at,
        )
    if isinstance(event, m.FrameworkRegistered):
        return task_pb2.FrameworkRegistered(framework_id=event.framework_id, master=event.master)
    deployment = deployment_to_pb(event)
    if deployment is not None:
        return deployment
    autoscale = autoscale_to_pb(event)
    if autoscale is not None:
        return autoscale
    raise TypeError(f"not an event: {event!r}")


# ---- decoding: (payload, aggregate id, time) -> value ----

Decoder = Callable[[bytes, str, float], m.EventData]


def _launched(p: Any, ident: str, at: float) -> m.TaskLaunched:
    return m.TaskLaunched(
        ident, p.group, p.group_version, p.host_id, p.hostname, dict(p.ports), p.cpus, p.mem, p.disk,
        at, dict(p.host_labels), p.cluster, p.host_address, p.service,
    )  # fmt: skip


def _status(p: Any, ident: str, at: float) -> m.TaskStatusChanged:
    return m.TaskStatusChanged(
        ident,
        m.TaskState(p.state),
        at,
        p.reason,
        p.message,
        p.exit_code if p.HasField("exit_code") else None,
        p.healthy if p.HasField("healthy") else None,
    )


PAYLOADS: dict[type[message.Message], Callable[[Any, str, float], m.EventData]] = {
    group_pb2.GroupScaled: lambda p, i, at: m.GroupScaled(p.instances, p.previous, p.reason),
    group_pb2.GroupCreated: lambda p, i, at: m.GroupCreated(trusted_spec_from_pb(p.spec), p.version),
    group_pb2.GroupUpdated: lambda p, i, at: m.GroupUpdated(trusted_spec_from_pb(p.spec), p.version),
    group_pb2.GroupRolledBack: lambda p, i, at: m.GroupRolledBack(
        trusted_spec_from_pb(p.spec), p.version, p.restored_version
    ),
    group_pb2.GroupDeleted: lambda p, i, at: m.GroupDeleted(p.version),
    group_pb2.GroupRolloutChanged: _rollout,
    group_pb2.ClusterRegistered: lambda p, i, at: m.ClusterRegistered(cluster_from_pb(p.cluster)),
    group_pb2.BuildRegistered: lambda p, i, at: m.BuildRegistered(build_from_pb(p.build)),
    group_pb2.NothingChanged: lambda p, i, at: m.NothingChanged(p.command),
    task_pb2.TaskLaunched: _launched,
    task_pb2.TaskStatusChanged: _status,
    task_pb2.TaskHealthChanged: lambda p, i, at: m.TaskHealthChanged(
        i, p.healthy if p.HasField("healthy") else None, p.failures, at, p.message
    ),
    task_pb2.TaskKillRequested: lambda p, i, at: m.TaskKillRequested(i, p.reason, at, p.drain_until),
    task_pb2.PlacementFailed: lambda p, i, at: m.PlacementFailed(
        p.group, p.count, dict(p.reasons), p.hosts, at
    ),
    task_pb2.GroupBackoffChanged: lambda p, i, at: m.GroupBackoffChanged(
        p.group, p.version, p.failures, p.delay, p.next_attempt_at, at
    ),
    task_pb2.FrameworkRegistered: lambda p, i, at: m.FrameworkRegistered(p.framework_id, p.master, at),
    **DEPLOYMENT_PAYLOADS,
    **AUTOSCALE_PAYLOADS,
}


def _decoder(cls: Any, convert: Callable[[Any, str, float], m.EventData]) -> Decoder:
    parse = cls.FromString
    return lambda data, ident, at: convert(parse(data), ident, at)


#: envelope type name -> decoder; replay decodes each payload in one step
DECODERS: dict[str, Decoder] = {cls.DESCRIPTOR.name: _decoder(cls, conv) for cls, conv in PAYLOADS.items()}

#: every event type Bay writes
EVENT_TYPES = frozenset(DECODERS)
