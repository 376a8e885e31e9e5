"""The registry: groups, clusters and builds, and the commands that change them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import grpc
from bay.v1 import group_pb2, registry_pb2, registry_pb2_grpc

from libs.clients._base import Q, R, ServiceClient
from libs.clients._caller import Caller
from libs.errors import BayError, Unavailable, ValidationFailed
from libs.grpcutil import hint_of

REGISTRY_SERVICE = registry_pb2.DESCRIPTOR.services_by_name["Registry"].full_name


class RegistryClient(ServiceClient):
    """``RegistryClient(settings.registry_addr, timeout=3.0, caller=Caller.bearer(token))``.

    The typed methods cover the common calls; any other is ``await registry.call(registry.stub.X,
    request)``. A command (create, scale...) that timed out may or may not have been carried out:
    send it again with the same ``idempotency_key`` and the registry answers it once.
    """

    what = "the registry"
    health_service = REGISTRY_SERVICE

    def __init__(
        self,
        addr: str,
        *,
        timeout: float,
        caller: Caller | None = None,
        field_names: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``field_names``: what the caller's own input calls the registry's fields (the gateway's
        ``Idempotency-Key`` header is the registry's ``idempotency_key``), for field violations."""
        super().__init__(addr, timeout=timeout, caller=caller, **kwargs)
        self.field_names = dict(field_names or {})
        # RegistryAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast("registry_pb2_grpc.RegistryAsyncStub", registry_pb2_grpc.RegistryStub(self.channel))

    def late(self, seconds: float) -> Unavailable:
        return Unavailable(
            f"the registry ({self.addr}) did not answer within {seconds:g} s",
            hint="the command may or may not have been carried out: retry with the same Idempotency-Key",
        )

    def unavailable(self, exc: grpc.aio.AioRpcError) -> Unavailable:
        # The registry says what it knows (nothing sent to NATS, or an append that may be stored);
        # without its word the call failed on the way (refused, or the connection broke), and a
        # broken connection may have carried the command first.
        return Unavailable(
            f"registry ({self.addr}): {exc.details()}",
            hint=hint_of(exc)
            or "the registry did not answer: if it got the command, it may have been carried out; "
            "retry with the same Idempotency-Key once it is back",
        )

    async def call(
        self, rpc: grpc.aio.UnaryUnaryMultiCallable[Q, R], request: Q, *, body_prefix: str = ""
    ) -> R:
        """``await stub.Method(request)`` with metadata and deadline.

        ``body_prefix``: the part of the registry's field paths the caller's input leaves out (the
        body of ``POST /v1/groups`` is the spec itself, so the registry's ``spec.cluster`` is
        ``cluster`` there).
        """
        try:
            return await super().call(rpc, request)
        except ValidationFailed as err:
            if not body_prefix and not self.field_names:
                raise
            raise _renamed(err, body_prefix, self.field_names) from err.__cause__

    # ---- the common calls, typed ----

    async def get_group(self, name: str) -> group_pb2.Group:
        """NotFound if there is no such group."""
        group: group_pb2.Group = await self.call(self.stub.GetGroup, registry_pb2.GetGroupRequest(name=name))
        return group

    async def list_groups(self, *, cluster: str = "", service: str = "") -> list[group_pb2.Group]:
        reply: registry_pb2.ListGroupsReply = await self.call(
            self.stub.ListGroups, registry_pb2.ListGroupsRequest(cluster=cluster, service=service)
        )
        return list(reply.groups)

    async def group_cluster(self, name: str) -> str:
        """The cluster the group runs on; NotFound if there is no such group."""
        return (await self.get_group(name)).spec.cluster

    async def scale(
        self,
        name: str,
        instances: int,
        *,
        reason: str = "",
        idempotency_key: str = "",
        expected_version: int = 0,
    ) -> registry_pb2.GroupReply:
        """Set the group's instance count; ``reason`` is kept in the event (``autoscaler: cpu 93%``)."""
        options = registry_pb2.CommandOptions(
            idempotency_key=idempotency_key, expected_version=expected_version, reason=reason
        )
        request = registry_pb2.ScaleGroupRequest(name=name, instances=instances, options=options)
        reply: registry_pb2.GroupReply = await self.call(self.stub.ScaleGroup, request)
        return reply

    async def set_rollout(
        self,
        name: str,
        targets: list[registry_pb2.RolloutTarget],
        *,
        deployment: str = "",
        reason: str = "",
        idempotency_key: str = "",
    ) -> registry_pb2.GroupReply:
        """What runs per version (the deployer's command); see ``Registry.SetRollout``."""
        options = registry_pb2.CommandOptions(idempotency_key=idempotency_key, reason=reason)
        request = registry_pb2.SetRolloutRequest(
            name=name, targets=targets, deployment=deployment, options=options
        )
        reply: registry_pb2.GroupReply = await self.call(self.stub.SetRollout, request)
        return reply

    async def update_group(
        self, spec: group_pb2.GroupSpec, *, idempotency_key: str = "", expected_version: int = 0
    ) -> registry_pb2.GroupReply:
        options = registry_pb2.CommandOptions(
            idempotency_key=idempotency_key, expected_version=expected_version
        )
        request = registry_pb2.UpdateGroupRequest(spec=spec, options=options)
        reply: registry_pb2.GroupReply = await self.call(self.stub.UpdateGroup, request)
        return reply

    async def rollback_group(
        self, name: str, version: int, *, idempotency_key: str = "", expected_version: int = 0
    ) -> registry_pb2.GroupReply:
        options = registry_pb2.CommandOptions(
            idempotency_key=idempotency_key, expected_version=expected_version
        )
        request = registry_pb2.RollbackGroupRequest(name=name, version=version, options=options)
        reply: registry_pb2.GroupReply = await self.call(self.stub.RollbackGroup, request)
        return reply

    async def get_build(self, build_id: str) -> group_pb2.Build | None:
        reply: registry_pb2.ListBuildsReply = await self.call(
            self.stub.ListBuilds, registry_pb2.ListBuildsRequest()
        )
        return next((b for b in reply.builds if b.id == build_id), None)

    async def list_clusters(self) -> list[group_pb2.Cluster]:
        reply: registry_pb2.ListClustersReply = await self.call(
            self.stub.ListClusters, registry_pb2.ListClustersRequest()
        )
        return list(reply.clusters)

    async def register_cluster(self, cluster: group_pb2.Cluster) -> group_pb2.Cluster:
        """A repeat of the same registration is a no-op; a name taken otherwise is a Conflict."""
        registered: group_pb2.Cluster = await self.call(
            self.stub.RegisterCluster, registry_pb2.RegisterClusterRequest(cluster=cluster)
        )
        return registered


def _renamed(err: ValidationFailed, prefix: str, names: Mapping[str, str]) -> BayError:
    return ValidationFailed(
        [replace(v, field=names.get(v.field) or v.field.removeprefix(prefix)) for v in err.violations]
    )
