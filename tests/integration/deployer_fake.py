"""A small in-process ``bay.v1.Deployer`` (a real grpc.aio server on a free port) for the tests of its
clients: the gateway's deployment routes, the CLI's ``bay deploy`` and ``bay rollout``, and
DeployerClient. It keeps deployments in memory, refuses a second running one per group (Conflict,
ABORTED) unless ``supersede``, answers a repeated idempotency key once, and streams a deployment's
changes to watchers; a test moves a deployment on with :meth:`FakeDeployer.change`.

It is not the deployer: nothing here rolls out tasks. Its rules are the API's (deploy.proto).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
from bay.v1 import deploy_pb2, deploy_pb2_grpc

from libs.clients import DEPLOYER_SERVICE
from libs.errors import BayError, Conflict, FieldViolation, NotFound, ValidationFailed
from libs.grpcutil import abort_with, make_server, metadata_value, translate_errors

ENDED = {"succeeded", "failed", "aborted", "rolled_back", "superseded"}
#: builds the fake knows; any other is refused as the deployer refuses an unknown build
BUILDS = {"web-41": 41, "web-42": 42, "web-43": 43}
INSTANCES = 4


def _now(msg: deploy_pb2.Deployment, name: str) -> None:
    getattr(msg, name).FromSeconds(int(time.time()))


def _copy(d: deploy_pb2.Deployment) -> deploy_pb2.Deployment:
    out = deploy_pb2.Deployment()
    out.CopyFrom(d)
    return out


def _step_names(strategy: deploy_pb2.Strategy) -> list[str]:
    kind = strategy.kind or "rolling"
    if kind != "canary":
        return {"blue-green": ["start green", "switch", "drain"], "recreate": ["stop", "start"]}.get(
            kind, ["roll"]
        )
    names = []
    for s in strategy.steps:
        which = s.WhichOneof("step")
        if which == "set_share":
            names.append(f"share {s.set_share:.0%}")
        elif which == "set_weight":
            names.append(f"weight {s.set_weight:g}%")
        elif which == "pause":
            names.append(f"pause {s.pause.seconds:g}s" if s.pause.HasField("seconds") else "pause")
        else:
            names.append("analysis")
    return [*names, "promote"]


def _superseded(d: deploy_pb2.Deployment) -> None:
    d.state, d.reason = "superseded", "superseded by a new deployment"


@dataclass
class DeployerBook(deploy_pb2_grpc.DeployerServicer):
    deployments: dict[str, deploy_pb2.Deployment] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    replies: dict[str, deploy_pb2.DeploymentReply] = field(default_factory=dict)  # by idempotency key
    #: every request as it came, with its authorization and correlation id
    seen: list[tuple[str, object, str | None, str | None]] = field(default_factory=list)
    #: how a second deployment is refused: ABORTED (Conflict) or ALREADY_EXISTS, as deploy.proto allows
    conflict_code: grpc.StatusCode = grpc.StatusCode.ABORTED
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def _saw(self, method: str, request: object, context: grpc.aio.ServicerContext) -> None:
        self.seen.append(
            (
                method,
                request,
                metadata_value(context, "authorization"),
                metadata_value(context, "x-correlation-id"),
            )
        )

    def running(self, group: str) -> deploy_pb2.Deployment | None:
        return next((d for d in self.deployments.values() if d.group == group and d.state not in ENDED), None)

    def latest(self, group: str) -> deploy_pb2.Deployment | None:
        mine = [d for d in self.deployments.values() if d.group == group]
        return max(mine, key=lambda d: int(d.id.rsplit("-", 1)[1]), default=None)

    async def change(self, d: deploy_pb2.Deployment, edit: Callable[[deploy_pb2.Deployment], None]) -> None:
        """Apply ``edit`` to ``d`` as one change: watchers get the deployment after it."""
        edit(d)
        d.aggregate_version += 1
        _now(d, "updated")
        async with self.changed:
            self.changed.notify_all()

    def _create(self, group: str, strategy: deploy_pb2.Strategy, to_build: str, to_cluster: str,
                actor: str | None) -> deploy_pb2.Deployment:  # fmt: skip
        self.counters[group] = n = self.counters.get(group, 0) + 1
        before = self.latest(group)
        resolved = deploy_pb2.Strategy()
        resolved.CopyFrom(strategy)
        resolved.kind = strategy.kind or "rolling"
        if resolved.kind == "rolling" and not resolved.HasField("minimum_health_capacity"):
            resolved.minimum_health_capacity = 1.0
            resolved.maximum_over_capacity = 1.0
        d = deploy_pb2.Deployment(
            id=f"{group}-{n}",
            group=group,
            state="running",
            strategy=resolved,
            from_version=before.to_version if before else 1,
            to_version=(before.to_version if before else 1) + 1,
            from_build=before.to_build if before else "web-41",
            to_build=to_build,
            from_cluster=before.to_cluster if before else "local",
            to_cluster=to_cluster or (before.to_cluster if before else "local"),
            steps=[deploy_pb2.DeploymentStep(name=s, state="pending") for s in _step_names(resolved)],
            actor=(actor or "").removeprefix("Bearer ")[:8],
            instances=INSTANCES,
            old_running=INSTANCES,
            min_ready=INSTANCES,
            max_running=2 * INSTANCES,
            aggregate_version=1,
        )
        d.steps[0].state = "running"
        _now(d, "created")
        _now(d, "updated")
        d.steps[0].started.CopyFrom(d.created)
        self.deployments[d.id] = d
        return d

    # ---- the API ----

    @translate_errors
    async def Deploy(
        self, request: deploy_pb2.DeployRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.DeploymentReply:
        self._saw("Deploy", request, context)
        key = request.options.idempotency_key
        if key and key in self.replies:
            again = deploy_pb2.DeploymentReply()
            again.CopyFrom(self.replies[key])
            again.duplicate = True
            return again
        if request.build and request.build not in BUILDS:
            raise ValidationFailed([FieldViolation("build", f"no build {request.build!r} is registered")])
        if request.strategy.kind not in ("", "rolling", "recreate", "canary", "blue-green"):
            raise ValidationFailed([FieldViolation("strategy.kind", "unknown strategy")])
        for i, step in enumerate(request.strategy.steps):  # the deployer's own words (brackets)
            if step.WhichOneof("step") == "set_share" and not 0 < step.set_share <= 1:
                raise ValidationFailed(
                    [FieldViolation(f"strategy.steps[{i}].set_share", "a fraction in (0, 1]")]
                )
        if request.group == "ghost":
            raise NotFound("no group 'ghost'")
        running = self.running(request.group)
        if running is not None and not request.supersede:
            message = f"group {request.group!r} has deployment {running.id} {running.state}"
            if self.conflict_code == grpc.StatusCode.ALREADY_EXISTS:
                await context.abort(grpc.StatusCode.ALREADY_EXISTS, message)
            raise Conflict(message)
        if running is not None:
            await self.change(running, _superseded)
        build = request.build or request.spec.build
        d = self._create(
            request.group, request.strategy, build, request.cluster, metadata_value(context, "authorization")
        )
        reply = deploy_pb2.DeploymentReply(deployment=d)
        if key:
            self.replies[key] = reply
        return reply

    def _find(self, request: deploy_pb2.GetDeploymentRequest) -> deploy_pb2.Deployment:
        d = (
            self.deployments.get(request.id)
            if request.id
            else self.running(request.group) or self.latest(request.group)
        )
        if d is None:
            raise NotFound(f"no deployment {request.id or 'of group ' + repr(request.group)}")
        return d

    @translate_errors
    async def GetDeployment(
        self, request: deploy_pb2.GetDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.Deployment:
        self._saw("GetDeployment", request, context)
        return self._find(request)

    @translate_errors
    async def ListDeployments(
        self, request: deploy_pb2.ListDeploymentsRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.ListDeploymentsReply:
        self._saw("ListDeployments", request, context)
        found = [d for d in self.deployments.values() if not request.group or d.group == request.group]
        found.sort(key=lambda d: (d.created.seconds, d.id), reverse=True)
        return deploy_pb2.ListDeploymentsReply(deployments=found[: request.limit or 100])

    def _running_of(self, group: str) -> deploy_pb2.Deployment:
        d = self.running(group)
        if d is None:
            raise Conflict(f"group {group!r} has no running deployment")
        return d

    async def _control(
        self,
        method: str,
        request: deploy_pb2.ControlRequest | deploy_pb2.PromoteRequest,
        context: grpc.aio.ServicerContext,
        edit: Callable[[deploy_pb2.Deployment], None],
    ) -> deploy_pb2.DeploymentReply:
        self._saw(method, request, context)
        d = self._running_of(request.group)
        await self.change(d, edit)
        return deploy_pb2.DeploymentReply(deployment=d)

    @translate_errors
    async def Pause(
        self, request: deploy_pb2.ControlRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.DeploymentReply:
        if (now := self.running(request.group)) is not None and now.state == "paused":
            raise Conflict(f"deployment {now.id} is paused already")

        def edit(d: deploy_pb2.Deployment) -> None:
            d.state, d.reason = "paused", request.reason or "paused by an operator"

        return await self._control("Pause", request, context, edit)

    @translate_errors
    async def Resume(
        self, request: deploy_pb2.ControlRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.DeploymentReply:
        def edit(d: deploy_pb2.Deployment) -> None:
            d.state, d.reason = "running", ""

        return await self._control("Resume", request, context, edit)

    @translate_errors
    async def Promote(
        self, request: deploy_pb2.PromoteRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.DeploymentReply:
        def edit(d: deploy_pb2.Deployment) -> None:
            last = len(d.steps) if request.all else d.current_step + 1
            for i in range(d.current_step, min(last, len(d.steps))):
                d.steps[i].state = "done"
            d.current_step = min(last, len(d.steps) - 1)
            if last >= len(d.steps):
                d.state, d.new_ready, d.old_running = "succeeded", d.instances, 0
            else:
                d.steps[d.current_step].state = "running"

        return await self._control("Promote", request, context, edit)

    @translate_errors
    async def Abort(
        self, request: deploy_pb2.ControlRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.DeploymentReply:
        def edit(d: deploy_pb2.Deployment) -> None:
            d.state, d.reason, d.new_running, d.new_ready = "aborted", request.reason or "aborted", 0, 0

        return await self._control("Abort", request, context, edit)

    @translate_errors
    async def Undo(
        self, request: deploy_pb2.ControlRequest, context: grpc.aio.ServicerContext
    ) -> deploy_pb2.DeploymentReply:
        self._saw("Undo", request, context)
        last = self.latest(request.group)
        if last is None or self.running(request.group) is not None:
            raise Conflict(f"group {request.group!r}: nothing to undo")
        d = self._create(request.group, deploy_pb2.Strategy(), last.from_build, "", None)
        d.to_version = last.from_version
        return deploy_pb2.DeploymentReply(deployment=d)

    async def WatchDeployment(  # type: ignore[override]
        self, request: deploy_pb2.GetDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[deploy_pb2.Deployment]:
        self._saw("WatchDeployment", request, context)
        try:
            d = self._find(request)
        except BayError as exc:
            await abort_with(context, exc)
        seen = d.aggregate_version
        yield _copy(d)
        while d.state not in ENDED:
            async with self.changed:
                await self.changed.wait_for(lambda seen=seen: d.aggregate_version != seen)  # type: ignore[misc]
            seen = d.aggregate_version
            yield _copy(d)


@dataclass
class FakeDeployer:
    book: DeployerBook
    server: grpc.aio.Server
    addr: str

    async def stop(self) -> None:
        await self.server.stop(grace=0)


async def start_deployer(book: DeployerBook | None = None, port: int = 0) -> FakeDeployer:
    """A fake deployer on a free port; ``book`` and ``port``: the same one again, after a stop."""
    book = book or DeployerBook()
    server, port = await make_server(
        f"127.0.0.1:{port}", [(deploy_pb2_grpc.add_DeployerServicer_to_server, book, DEPLOYER_SERVICE)]
    )
    await server.start()
    return FakeDeployer(book, server, f"127.0.0.1:{port}")
