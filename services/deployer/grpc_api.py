"""gRPC ``bay.v1.Deployer``: requests become commands; domain errors become status codes.

Mutations need an operator token, reads a viewer token (libs.auth), as the registry's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from bay.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2

from libs.auth import Principal, TokenStore
from libs.errors import BayError, FieldViolation, NotFound, ValidationFailed
from libs.events import EventMeta
from libs.events.deploy_codec import strategy_from_pb
from libs.grpcutil import abort_with, metadata_value, translate_errors
from libs.spec_pb import spec_from_pb
from libs.views.deployments import Deployment
from services.deployer.adapters.wire import deployment_to_pb
from services.deployer.domain import deployment as dd
from services.deployer.service_layer.deployer import Deployer


class DeployerServicer(deploy_pb2_grpc.DeployerServicer):
    def __init__(self, deployer: Deployer, tokens: TokenStore) -> None:
        self.deployer = deployer
        self.tokens = tokens

    def _principal(self, context: grpc.aio.ServicerContext, role: str) -> Principal:
        return self.tokens.authenticate(metadata_value(context, "authorization"), needed=role)

    def _meta(self, context: grpc.aio.ServicerContext, opts: registry_pb2.CommandOptions) -> EventMeta:
        who = self._principal(context, "operator")
        return EventMeta.command(who.name, metadata_value(context, "x-correlation-id"), opts.idempotency_key)

    async def _do(self, cmd: dd.Command, meta: EventMeta) -> deploy_pb2.DeploymentReply:
        d, duplicate = await self.deployer.command_once(cmd, meta)
        return deploy_pb2.DeploymentReply(deployment=deployment_to_pb(d), duplicate=duplicate)

    @translate_errors
    async def Deploy(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        spec = spec_from_pb(request.spec) if request.HasField("spec") else None
        if not (request.build or spec or request.cluster):
            raise ValidationFailed([FieldViolation("build", "give a build, a spec or a cluster to deploy")])
        strategy = strategy_from_pb(request.strategy) if request.HasField("strategy") else None
        cmd = dd.Deploy(request.group, request.build, spec, request.cluster, strategy, request.supersede)
        return await self._do(cmd, meta)

    @translate_errors
    async def Pause(self, request, context):  # type: ignore[no-untyped-def]
        return await self._do(dd.Pause(request.group, request.reason), self._meta(context, request.options))

    @translate_errors
    async def Resume(self, request, context):  # type: ignore[no-untyped-def]
        return await self._do(dd.Resume(request.group), self._meta(context, request.options))

    @translate_errors
    async def Promote(self, request, context):  # type: ignore[no-untyped-def]
        return await self._do(dd.Promote(request.group, request.all), self._meta(context, request.options))

    @translate_errors
    async def Abort(self, request, context):  # type: ignore[no-untyped-def]
        return await self._do(dd.Abort(request.group, request.reason), self._meta(context, request.options))

    @translate_errors
    async def Undo(self, request, context):  # type: ignore[no-untyped-def]
        return await self._do(dd.Undo(request.group, request.reason), self._meta(context, request.options))

    def _find(self, request: deploy_pb2.GetDeploymentRequest) -> Deployment:
        dv = self.deployer.view.deployments
        if request.id:
            d = dv.by_id.get(request.id)
        else:
            d = dv.current(request.group) or dv.latest(request.group)
        if d is None:
            raise NotFound(f"no deployment {request.id or 'of group ' + repr(request.group)}")
        return d

    @translate_errors
    async def GetDeployment(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        return deployment_to_pb(self._find(request))

    @translate_errors
    async def ListDeployments(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        dv = self.deployer.view.deployments
        found = dv.of_group(request.group) if request.group else list(dv.by_id.values())
        found.sort(key=lambda d: d.created, reverse=True)
        limit = request.limit or 100
        return deploy_pb2.ListDeploymentsReply(deployments=[deployment_to_pb(d) for d in found[:limit]])

    async def WatchDeployment(self, request, context) -> AsyncIterator[deploy_pb2.Deployment]:  # type: ignore[no-untyped-def,override]
        try:
            self._principal(context, "viewer")
            d = self._find(request)
        except BayError as exc:  # as translate_errors does for a unary call
            await abort_with(context, exc)
        yield deployment_to_pb(d)
        seen = d.aggregate_version
        view = self.deployer.view
        while True:
            # looked at before each wait: what was folded while the last one was sent is not missed
            now = view.deployments.by_id.get(d.id, d)
            if now.aggregate_version != seen:
                d, seen = now, now.aggregate_version
                yield deployment_to_pb(d)
                continue
            if d.ended:
                return
            await view.next_deployment_change()
