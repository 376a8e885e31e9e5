"""Translation between the registry's domain values and their protobuf wire form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bay.v1 import group_pb2, snapshot_pb2
from google.protobuf import message, timestamp_pb2

from libs.spec_pb import spec_to_pb, trusted_spec_from_pb
from services.registry.domain import group as g
from services.registry.domain.catalog import Build, BuildRegistered, Cluster, ClusterRegistered
from services.registry.domain.registry import Event, RegistryState, Seen


def _ts(msg: timestamp_pb2.Timestamp, seconds: float) -> None:
    msg.FromNanoseconds(int(seconds * 1e9))


def cluster_to_pb(c: Cluster) -> group_pb2.Cluster:
    out = group_pb2.Cluster(
        name=c.name,
        backend=c.backend,
        address=c.address,
        labels=c.labels,
        scheduler_address=c.scheduler_address,
    )
    _ts(out.registered, c.registered)
    return out


def cluster_from_pb(m: group_pb2.Cluster) -> Cluster:
    return Cluster(
        m.name,
        m.backend,
        m.address,
        dict(m.labels),
        m.registered.ToNanoseconds() / 1e9,
        m.scheduler_address,
    )


def build_to_pb(b: Build) -> group_pb2.Build:
    out = group_pb2.Build(id=b.id, image=b.image, commit=b.commit, metadata=b.metadata)
    _ts(out.registered, b.registered)
    return out


def build_from_pb(m: group_pb2.Build) -> Build:
    return Build(m.id, m.image, m.commit, dict(m.metadata), m.registered.ToNanoseconds() / 1e9)


def group_to_pb(x: g.Group, *, configured: bool = False) -> group_pb2.Group:
    """The wire form; ``configured`` keeps the spec as last configured (for snapshots)."""
    out = group_pb2.Group(
        spec=spec_to_pb(x.spec if configured else x.current_spec()),
        version=x.version,
        aggregate_version=x.aggregate_version,
        deleted=x.deleted,
    )
    _ts(out.created, x.created)
    _ts(out.updated, x.updated)
    return out


class GroupPbCache:
    """Wire forms of groups, rebuilt only when a group changes (groups are immutable values, so
    identity tells): listing 1,000 groups must not convert 1,000 specs each time."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[g.Group, group_pb2.Group]] = {}

    def get(self, x: g.Group) -> group_pb2.Group:
        hit = self._items.get(x.spec.name)
        if hit is not None and hit[0] is x:
            return hit[1]
        pb = group_to_pb(x)
        self._items[x.spec.name] = (x, pb)
        return pb


def event_to_pb(event: Event) -> message.Message:
    match event:
        case g.GroupCreated(spec, version):
            return group_pb2.GroupCreated(spec=spec_to_pb(spec), version=version)
        case g.GroupUpdated(spec, version):
            return group_pb2.GroupUpdated(spec=spec_to_pb(spec), version=version)
        case g.GroupScaled(instances, previous, reason):
            return group_pb2.GroupScaled(instances=instances, previous=previous, reason=reason)
        case g.GroupRolledBack(spec, version, restored):
            return group_pb2.GroupRolledBack(
                spec=spec_to_pb(spec), version=version, restored_version=restored
            )
        case g.GroupDeleted(version):
            return group_pb2.GroupDeleted(version=version)
        case ClusterRegistered(cluster):
            return group_pb2.ClusterRegistered(cluster=cluster_to_pb(cluster))
        case BuildRegistered(build):
            return group_pb2.BuildRegistered(build=build_to_pb(build))
    raise TypeError(f"no wire form for {event!r}")


_FROM_PB: dict[type[message.Message], Callable[[Any], Event]] = {
    group_pb2.GroupScaled: lambda m: g.GroupScaled(m.instances, m.previous, m.reason),
    group_pb2.GroupCreated: lambda m: g.GroupCreated(trusted_spec_from_pb(m.spec), m.version),
    group_pb2.GroupUpdated: lambda m: g.GroupUpdated(trusted_spec_from_pb(m.spec), m.version),
    group_pb2.GroupRolledBack: lambda m: g.GroupRolledBack(
        trusted_spec_from_pb(m.spec), m.version, m.restored_version
    ),
    group_pb2.GroupDeleted: lambda m: g.GroupDeleted(m.version),
    group_pb2.ClusterRegistered: lambda m: ClusterRegistered(cluster_from_pb(m.cluster)),
    group_pb2.BuildRegistered: lambda m: BuildRegistered(build_from_pb(m.build)),
}


def _decoder(cls: Any, convert: Callable[[Any], Event]) -> Callable[[bytes], Event]:
    parse = cls.FromString
    return lambda data: convert(parse(data))


# type name -> bytes -> domain event: replay decodes each payload in one step
DECODERS: dict[str, Callable[[bytes], Event]] = {
    cls.DESCRIPTOR.name: _decoder(cls, convert) for cls, convert in _FROM_PB.items()
}


def event_from_pb(msg: message.Message) -> Event:
    convert = _FROM_PB.get(type(msg))
    if convert is None:
        raise TypeError(f"not a registry event: {type(msg).__name__}")
    return convert(msg)


def encode_snapshot(state: RegistryState, sequence: int) -> bytes:
    snap = snapshot_pb2.RegistrySnapshot(sequence=sequence, subject_sequences=state.subject_seq)
    snap.groups.extend(group_to_pb(x, configured=True) for x in state.groups.values())  # tombstones too
    snap.instances.update({name: x.instances for name, x in state.groups.items()})
    snap.clusters.extend(cluster_to_pb(c) for c in state.clusters.values())
    snap.builds.extend(build_to_pb(b) for b in state.builds.values())
    for key, seen in state.idempotency.items():
        snap.idempotency.add(key=f"{seen.subject} {key}", sequence=seen.sequence, time=seen.time)
    return snap.SerializeToString()


def decode_snapshot(data: bytes) -> RegistryState:
    snap = snapshot_pb2.RegistrySnapshot.FromString(data)
    state = RegistryState(subject_seq=dict(snap.subject_sequences))
    for m in snap.groups:
        spec = trusted_spec_from_pb(m.spec)
        grp = g.Group(
            spec=spec,
            instances=snap.instances.get(spec.name, spec.instances),
            version=m.version,
            aggregate_version=m.aggregate_version,
            created=m.created.ToNanoseconds() / 1e9,
            updated=m.updated.ToNanoseconds() / 1e9,
            deleted=m.deleted,
        )
        state.groups[grp.spec.name] = grp
    for c in snap.clusters:
        state.clusters[c.name] = cluster_from_pb(c)
    for b in snap.builds:
        state.builds[b.id] = build_from_pb(b)
    for e in snap.idempotency:
        subject, _, key = e.key.partition(" ")
        state.idempotency[key] = Seen(subject, e.sequence, e.time)
    return state
