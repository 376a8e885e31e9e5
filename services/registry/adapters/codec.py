"""Translation between the registry's domain values and their protobuf wire form (replies and
snapshots; events are :mod:`libs.events`' own)."""

from __future__ import annotations

from bay.v1 import group_pb2, snapshot_pb2
from google.protobuf import timestamp_pb2

from libs.events.codec import (
    build_from_pb,
    build_to_pb,
    cluster_from_pb,
    cluster_to_pb,
    target_from_pb,
    target_to_pb,
)
from libs.spec_pb import spec_to_pb, trusted_spec_from_pb
from services.registry.domain import group as g
from services.registry.domain.registry import RegistryState, Seen

__all__ = [
    "GroupPbCache",
    "build_from_pb",
    "build_to_pb",
    "cluster_from_pb",
    "cluster_to_pb",
    "decode_snapshot",
    "encode_snapshot",
    "group_to_pb",
]


SNAPSHOT_FORMAT = 2  # 2: groups carry their version targets


def _ts(msg: timestamp_pb2.Timestamp, seconds: float) -> None:
    msg.FromNanoseconds(int(seconds * 1e9))


def group_to_pb(x: g.Group, *, configured: bool = False) -> group_pb2.Group:
    """The wire form; ``configured`` keeps the spec as last configured (for snapshots)."""
    out = group_pb2.Group(
        spec=spec_to_pb(x.spec if configured else x.current_spec()),
        version=x.version,
        aggregate_version=x.aggregate_version,
        deleted=x.deleted,
        targets=[target_to_pb(t) for t in x.targets],
        deployment=x.deployment,
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


def encode_snapshot(state: RegistryState, sequence: int) -> bytes:
    snap = snapshot_pb2.RegistrySnapshot(
        sequence=sequence,
        subject_sequences=state.subject_seq,
        subject_versions=state.subject_version,
        format=SNAPSHOT_FORMAT,
    )
    snap.groups.extend(group_to_pb(x, configured=True) for x in state.groups.values())  # tombstones too
    snap.instances.update({name: x.instances for name, x in state.groups.items()})
    snap.clusters.extend(cluster_to_pb(c) for c in state.clusters.values())
    snap.builds.extend(build_to_pb(b) for b in state.builds.values())
    for key, seen in state.idempotency.items():
        snap.idempotency.add(
            key=f"{seen.subject} {key}",
            sequence=seen.sequence,
            time=seen.time,
            command=seen.command,
            request_digest=seen.digest,
        )
    return snap.SerializeToString()


def decode_snapshot(data: bytes) -> RegistryState:
    snap = snapshot_pb2.RegistrySnapshot.FromString(data)
    if snap.subject_sequences and not snap.subject_versions:
        raise ValueError("a snapshot from before aggregate versions were kept: replay instead")
    if snap.groups and snap.format < SNAPSHOT_FORMAT:
        raise ValueError("a snapshot from before version targets were kept: replay instead")
    state = RegistryState()
    state.subject_seq.update(snap.subject_sequences)
    state.subject_version.update(snap.subject_versions)
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
            targets=tuple(target_from_pb(t) for t in m.targets),
            deployment=m.deployment,
        )
        state.groups[grp.spec.name] = grp
    for c in snap.clusters:
        state.clusters[c.name] = cluster_from_pb(c)
    for b in snap.builds:
        state.builds[b.id] = build_from_pb(b)
    for e in snap.idempotency:
        subject, _, key = e.key.partition(" ")
        state.idempotency[key] = Seen(subject, e.sequence, e.time, e.command, e.request_digest)
    return state
