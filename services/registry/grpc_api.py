"""gRPC entrypoint: requests become commands; domain errors become status codes (libs.grpcutil)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
from bay.v1 import envelope_pb2, group_pb2, registry_pb2, registry_pb2_grpc

from libs.auth import Principal, TokenStore
from libs.errors import BayError, FieldViolation, ValidationFailed
from libs.events import EventMeta
from libs.grpcutil import abort_with, metadata_value, translate_errors
from libs.spec import DNS_LABEL_RE
from libs.spec_pb import spec_from_pb
from services.registry.adapters.codec import (
    GroupPbCache,
    build_from_pb,
    build_to_pb,
    cluster_from_pb,
    cluster_to_pb,
)
from services.registry.domain import group as g
from services.registry.handlers import Registry


def group_name(name: str) -> str:
    """A group named in a command: a DNS label, or INVALID_ARGUMENT (not echoed whole: it may be
    huge). A query for a name that cannot exist is simply NOT_FOUND (its message clipped)."""
    if not re.match(DNS_LABEL_RE, name):
        shown = name if len(name) <= 70 else f"{name[:60]}... ({len(name)} characters)"
        raise ValidationFailed(
            [
                FieldViolation(
                    "name", f"must be a group name (a DNS label, at most 63 characters), not {shown!r}"
                )
            ]
        )
    return name


class RegistryServicer(registry_pb2_grpc.RegistryServicer):
    def __init__(self, registry: Registry, tokens: TokenStore) -> None:
        self.registry = registry
        self.tokens = tokens
        self.wire = GroupPbCache()

    def _principal(self, context: grpc.aio.ServicerContext, role: str) -> Principal:
        return self.tokens.authenticate(metadata_value(context, "authorization"), needed=role)

    def _meta(self, context: grpc.aio.ServicerContext, opts: registry_pb2.CommandOptions) -> EventMeta:
        who = self._principal(context, "operator")
        correlation = metadata_value(context, "x-correlation-id")
        return EventMeta.command(who.name, correlation, opts.idempotency_key)

    async def _group(self, cmd: g.GroupCommand, meta: EventMeta) -> registry_pb2.GroupReply:
        grp, outcome = await self.registry.group_command(cmd, meta)
        return registry_pb2.GroupReply(
            group=self.wire.get(grp), sequence=outcome.sequence, duplicate=outcome.duplicate
        )

    # Each mutation authenticates first (once, in _meta), so a caller without the right token
    # learns nothing about the validity of its request.

    @translate_errors
    async def CreateGroup(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        return await self._group(g.CreateGroup(spec_from_pb(request.spec)), meta)

    @translate_errors
    async def UpdateGroup(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        cmd = g.UpdateGroup(spec_from_pb(request.spec), request.options.expected_version)
        return await self._group(cmd, meta)

    @translate_errors
    async def ScaleGroup(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        if request.instances < 0:
            raise ValidationFailed([FieldViolation("instances", "must be 0 or more")])
        opts = request.options
        return await self._group(
            g.ScaleGroup(group_name(request.name), request.instances, opts.reason, opts.expected_version),
            meta,
        )

    @translate_errors
    async def DeleteGroup(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        return await self._group(
            g.DeleteGroup(group_name(request.name), request.options.expected_version), meta
        )

    @translate_errors
    async def RollbackGroup(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        if request.version < 1:
            raise ValidationFailed([FieldViolation("version", "must be 1 or more")])
        cmd = g.RollbackGroup(
            group_name(request.name), request.version, None, request.options.expected_version
        )
        return await self._group(cmd, meta)

    @translate_errors
    async def SetRollout(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        targets = tuple(
            g.RolloutTarget(t.version, t.instances, t.in_service, t.weight if t.HasField("weight") else None)
            for t in request.targets
        )
        opts = request.options
        cmd = g.SetRollout(
            group_name(request.name), targets, request.deployment, opts.reason, opts.expected_version
        )
        return await self._group(cmd, meta)

    @translate_errors
    async def GetGroup(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        return self.wire.get(self.registry.get_group(request.name))

    @translate_errors
    async def ListGroups(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        groups = self.registry.list_groups(request.cluster, request.service)
        return registry_pb2.ListGroupsReply(groups=[self.wire.get(x) for x in groups])

    @translate_errors
    async def GroupHistory(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        records = await self.registry.history(request.name)
        return registry_pb2.GroupHistoryReply(
            events=[
                envelope_pb2.EventRecord(sequence=r.sequence, subject=r.subject, envelope=r.envelope)
                for r in records
            ]
        )

    @translate_errors
    async def RegisterCluster(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        cluster, _ = await self.registry.register_cluster(cluster_from_pb(request.cluster), meta)
        return cluster_to_pb(cluster)

    @translate_errors
    async def ListClusters(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        clusters = sorted(self.registry.state.clusters.values(), key=lambda c: c.name)
        return registry_pb2.ListClustersReply(clusters=[cluster_to_pb(c) for c in clusters])

    @translate_errors
    async def RegisterBuild(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        build, _ = await self.registry.register_build(build_from_pb(request.build), meta)
        return build_to_pb(build)

    @translate_errors
    async def ListBuilds(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        builds = sorted(self.registry.state.builds.values(), key=lambda b: b.registered)
        return registry_pb2.ListBuildsReply(builds=[build_to_pb(b) for b in builds])

    async def Watch(  # type: ignore[override]
        self, request: registry_pb2.WatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[envelope_pb2.EventRecord]:
        try:
            self._principal(context, "viewer")
            start = request.from_sequence or (self.registry.projection.sequence + 1)
            async for rec in self.registry.watch(start, request.subject_filter or None):
                yield envelope_pb2.EventRecord(
                    sequence=rec.sequence, subject=rec.subject, envelope=rec.envelope
                )
        except BayError as exc:
            await abort_with(context, exc)


_ = group_pb2  # imported so every event type is known to the descriptor pool for reflection
