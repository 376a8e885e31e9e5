"""The deployer: deployments of a group from one version (and build) to another, and their controls."""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any, cast

import grpc
from bay.v1 import deploy_pb2, deploy_pb2_grpc, group_pb2, registry_pb2

from libs.clients._base import ServiceClient
from libs.clients._caller import Caller
from libs.errors import BayError, Conflict, ValidationFailed
from libs.grpcutil import hint_of

DEPLOYER_SERVICE = deploy_pb2.DESCRIPTOR.services_by_name["Deployer"].full_name

#: a second deployment of a group, or a control that the deployment's state refuses (resume of one
#: that runs): the deployer may say either; both are a Conflict (HTTP 409)
_INDEX = re.compile(r"\[([0-9]+)\]")
_CONFLICT_CODES = (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION)


class DeployerClient(ServiceClient):
    """``DeployerClient(settings.deployer_addr, timeout=3.0, caller=Caller.bearer(token))``.

    A deploy or control that timed out may or may not have been carried out: send it again with the
    same ``idempotency_key`` (the deployer answers it once, ``duplicate`` set). A second deployment of
    a group that has one running is a :class:`~libs.errors.Conflict`, unless ``supersede``.
    """

    what = "the deployer"
    health_service = DEPLOYER_SERVICE

    def __init__(
        self,
        addr: str,
        *,
        timeout: float,
        caller: Caller | None = None,
        configured_by: str = "this service",
        field_names: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``configured_by`` names whose ``BAY_DEPLOYER_ADDR`` holds the address (for the hint when
        the deployer is down); ``field_names``: what the caller's input calls the deployer's fields
        (the gateway's body has no ``group``: it is the path's ``name``), for field violations."""
        super().__init__(addr, timeout=timeout, caller=caller, **kwargs)
        self.configured_by = configured_by
        self.field_names = dict(field_names or {})
        # DeployerAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast("deploy_pb2_grpc.DeployerAsyncStub", deploy_pb2_grpc.DeployerStub(self.channel))

    def down_hint(self) -> str:
        return (
            "start the deployer (`bay up` runs it; else `python -m services.deployer`), or fix its "
            f"address in {self.configured_by}'s BAY_DEPLOYER_ADDR"
        )

    def translate(self, exc: grpc.aio.AioRpcError) -> BayError:
        if exc.code() in _CONFLICT_CODES:
            return Conflict(exc.details() or "conflict", hint=hint_of(exc))
        err = super().translate(exc)
        if isinstance(err, ValidationFailed):
            return ValidationFailed([replace(v, field=self._field(v.field)) for v in err.violations])
        return err

    def _field(self, path: str) -> str:
        dotted = _INDEX.sub(r".\1", path)  # Bay's paths are dotted: steps.0, not steps[0]
        return self.field_names.get(dotted, dotted)

    # ---- deployments ----

    async def deploy(
        self,
        group: str,
        *,
        build: str = "",
        spec: group_pb2.GroupSpec | None = None,
        cluster: str = "",
        strategy: deploy_pb2.Strategy | None = None,
        supersede: bool = False,
        reason: str = "",
        idempotency_key: str = "",
    ) -> deploy_pb2.DeploymentReply:
        """Start a deployment of ``build`` (a registered build's id) or of a whole new ``spec``;
        ``cluster``: move the group there. Conflict if one of the group runs, unless ``supersede``."""
        request = deploy_pb2.DeployRequest(
            group=group,
            build=build,
            spec=spec,
            cluster=cluster,
            strategy=strategy,
            supersede=supersede,
            options=_options(idempotency_key, reason),
        )
        reply: deploy_pb2.DeploymentReply = await self.call(self.stub.Deploy, request)
        return reply

    async def get(self, deployment_id: str = "", *, group: str = "") -> deploy_pb2.Deployment:
        """A deployment by id, or the group's current (else last) one; NotFound if none."""
        request = deploy_pb2.GetDeploymentRequest(id=deployment_id, group=group)
        deployment: deploy_pb2.Deployment = await self.call(self.stub.GetDeployment, request)
        return deployment

    async def list(self, group: str = "", *, limit: int = 0) -> builtins.list[deploy_pb2.Deployment]:
        """The group's deployments (every group's when empty); ``limit`` 0 is the deployer's 100."""
        reply: deploy_pb2.ListDeploymentsReply = await self.call(
            self.stub.ListDeployments, deploy_pb2.ListDeploymentsRequest(group=group, limit=limit)
        )
        return [*reply.deployments]

    # ---- controls of the group's running deployment ----

    async def pause(
        self, group: str, *, reason: str = "", idempotency_key: str = ""
    ) -> deploy_pb2.DeploymentReply:
        return await self._control(self.stub.Pause, group, reason, idempotency_key)

    async def resume(
        self, group: str, *, reason: str = "", idempotency_key: str = ""
    ) -> deploy_pb2.DeploymentReply:
        return await self._control(self.stub.Resume, group, reason, idempotency_key)

    async def abort(
        self, group: str, *, reason: str = "", idempotency_key: str = ""
    ) -> deploy_pb2.DeploymentReply:
        """Back to exactly the last stable version and build, nothing of the new one left."""
        return await self._control(self.stub.Abort, group, reason, idempotency_key)

    async def undo(
        self, group: str, *, reason: str = "", idempotency_key: str = ""
    ) -> deploy_pb2.DeploymentReply:
        """A new deployment back to the version before the group's last successful deployment."""
        return await self._control(self.stub.Undo, group, reason, idempotency_key)

    async def promote(
        self, group: str, *, all_steps: bool = False, reason: str = "", idempotency_key: str = ""
    ) -> deploy_pb2.DeploymentReply:
        """On to the next step (past a pause until promoted), or with ``all_steps`` past every one."""
        request = deploy_pb2.PromoteRequest(
            group=group, all=all_steps, options=_options(idempotency_key, reason)
        )
        reply: deploy_pb2.DeploymentReply = await self.call(self.stub.Promote, request)
        return reply

    async def _control(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[deploy_pb2.ControlRequest, deploy_pb2.DeploymentReply],
        group: str,
        reason: str,
        idempotency_key: str,
    ) -> deploy_pb2.DeploymentReply:
        request = deploy_pb2.ControlRequest(
            group=group, reason=reason, options=_options(idempotency_key, reason)
        )
        return await self.call(rpc, request)

    # ---- following one ----

    async def watch(
        self, deployment_id: str = "", *, group: str = "", first_within: float | None = None
    ) -> AsyncIterator[deploy_pb2.Deployment]:
        """The deployment now, then at every change, until it ends (then the iterator ends).

        The first message is waited for here (``first_within``, default the client's timeout): an
        error before it (NotFound, the deployer down) is raised by this call, one after it ends the
        iterator with the BayError. Closing the iterator cancels the call.
        """
        request = deploy_pb2.GetDeploymentRequest(id=deployment_id, group=group)
        replies: AsyncIterator[deploy_pb2.Deployment] = await self.open_stream(
            self.stub.WatchDeployment,
            request,
            first_within=self.timeout if first_within is None else first_within,
            first_required=True,  # the deployer answers a watch with the deployment at once
        )
        return replies


def _options(idempotency_key: str, reason: str) -> registry_pb2.CommandOptions:
    return registry_pb2.CommandOptions(idempotency_key=idempotency_key, reason=reason)
