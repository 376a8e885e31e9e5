"""Conversion between the REST shapes (``models``) and the registry's wire types (``bay.v1``)."""

from __future__ import annotations

from datetime import UTC, datetime

from bay.v1 import group_pb2, registry_pb2
from google.protobuf import timestamp_pb2

from libs.spec_pb import trusted_spec_from_pb
from services.gateway import models


def _time(ts: timestamp_pb2.Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9, tz=UTC)


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
