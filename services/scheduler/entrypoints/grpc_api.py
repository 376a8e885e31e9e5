"""The scheduler's gRPC API (protos/bay/v1/scheduler.proto): tasks, group status, logs, kill."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from bay.v1 import scheduler_pb2, scheduler_pb2_grpc, task_pb2

from libs.auth import Principal, TokenStore
from libs.defaults import MAX_LOG_TAIL
from libs.errors import BayError, FieldViolation, NotFound, ValidationFailed
from libs.events import EventMeta
from libs.grpcutil import abort_with, metadata_value, translate_errors
from services.scheduler.adapters import codec
from services.scheduler.domain.tasks import Task
from services.scheduler.entrypoints.cluster_status import cluster_status
from services.scheduler.ports import TaskState
from services.scheduler.service_layer.scheduler import Counts, Scheduler

STATES = {s.value for s in TaskState}
WATCH_COALESCE_SECONDS = 0.1


def pending_of(scheduler: Scheduler, group: str, c: Counts | None = None) -> scheduler_pb2.Pending:
    state = scheduler.state
    c = c or scheduler.counts(group)
    count = c.missing
    out = scheduler_pb2.Pending(count=count)
    failed = state.pending.get(group)
    if failed is not None and failed.count:
        out.reasons.update(failed.reasons)
        out.hosts = failed.hosts
    b = state.backoff.get(group)
    now = scheduler.clock()
    held = b is not None and b.failures and b.next_attempt_at > now and b.version in c.versions
    if b is not None and held:
        out.next_attempt_at = b.next_attempt_at
        out.backoff_delay = b.delay
        out.backoff_failures = b.failures
    # several versions here (a deployment): say which one is held back (the others are not)
    version = b.version if b is not None and held and len(c.versions) > 1 else 0
    out.summary = _summary(count, out, now, version)
    return out


def _summary(count: int, p: scheduler_pb2.Pending, now: float, version: int = 0) -> str:
    parts = []
    if count and p.reasons:
        worst = sorted(p.reasons.items(), key=lambda kv: -kv[1])
        why = ", ".join(f"{check} on {n} of {p.hosts} hosts" for check, n in worst)
        parts.append(f"{count} task(s) found no host: {why} failed")
    if p.next_attempt_at:
        of = f" of version {version}" if version else ""
        parts.append(
            f"launch backoff{of} after {p.backoff_failures} failure(s): next try in "
            f"{max(0.0, p.next_attempt_at - now):.1f}s"
        )
    return "; ".join(parts) or (f"{count} task(s) waiting to be launched" if count else "")


def status_of(scheduler: Scheduler, group: str) -> scheduler_pb2.GroupStatusReply:
    g = scheduler.state.group(group)
    c = scheduler.counts(group)
    return scheduler_pb2.GroupStatusReply(
        group=group,
        cluster=scheduler.cluster,
        version=g.version if g else 0,
        desired=c.desired,
        staged=c.staged,
        running=c.running,
        healthy=c.healthy,
        unhealthy=c.unhealthy,
        ready=c.ready,
        killing=c.killing,
        has_health_check=bool(g and g.spec.health_check),
        known=g is not None,
        pending=pending_of(scheduler, group, c),
        sequence=scheduler.projection.sequence,
        versions=[
            scheduler_pb2.VersionStatus(
                version=v.version, instances=v.instances, running=v.running, ready=v.ready,
                in_service=v.in_service,
            )
            for _, v in sorted(c.versions.items())
        ],
    )  # fmt: skip


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self, scheduler: Scheduler, tokens: TokenStore) -> None:
        self.scheduler = scheduler
        self.tokens = tokens

    def _principal(self, context: grpc.aio.ServicerContext, role: str) -> Principal:
        return self.tokens.authenticate(metadata_value(context, "authorization"), needed=role)

    def _pb(self, task: Task) -> task_pb2.Task:
        state = self.scheduler.state
        return codec.task_to_pb(task, state.is_ready(task))

    @translate_errors
    async def ListTasks(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        want = request.state.upper()
        if want and want not in STATES:
            raise ValidationFailed([FieldViolation("state", f"must be one of {', '.join(sorted(STATES))}")])
        state = self.scheduler.state
        candidates = state.group_tasks(request.group) if request.group else state.tasks.values()
        tasks = [
            task
            for task in candidates
            if (not want or task.state.value == want)
            and (request.include_terminal or not task.terminal or want)
        ]
        tasks.sort(key=lambda task: (task.group, task.launched_at, task.id))
        return scheduler_pb2.ListTasksReply(
            cluster=self.scheduler.cluster, tasks=[self._pb(x) for x in tasks]
        )

    @translate_errors
    async def GetTask(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        task = self.scheduler.state.tasks.get(request.id)
        if task is None:
            raise NotFound(f"no task {request.id!r} in cluster {self.scheduler.cluster}")
        return self._pb(task)

    @translate_errors
    async def GroupStatus(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        return status_of(self.scheduler, request.group)

    @translate_errors
    async def WhyPending(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        return pending_of(self.scheduler, request.group)

    async def WatchGroup(  # type: ignore[override]
        self, request: scheduler_pb2.GroupStatusRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[scheduler_pb2.GroupStatusReply]:
        try:
            self._principal(context, "viewer")
        except BayError as exc:
            await abort_with(context, exc)
        changed = self.scheduler.watch_group(request.group)
        try:
            last = None
            while True:
                changed.clear()
                reply = status_of(self.scheduler, request.group)
                stripped = scheduler_pb2.GroupStatusReply()
                stripped.CopyFrom(reply)
                stripped.sequence = 0
                key = stripped.SerializeToString(deterministic=True)
                if key != last:
                    last = key
                    yield reply
                try:
                    # the backoff countdown changes without events: look again at least every second
                    await asyncio.wait_for(changed.wait(), 1.0)
                    # a burst of changes (thousands of tasks starting) becomes one update per interval
                    await asyncio.sleep(WATCH_COALESCE_SECONDS)
                except TimeoutError:
                    pass
        finally:
            self.scheduler.unwatch_group(request.group, changed)

    async def TaskLogs(  # type: ignore[override]
        self, request: scheduler_pb2.TaskLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[scheduler_pb2.LogChunk]:
        try:
            self._principal(context, "viewer")
            stream = request.stream or "stdout"
            if stream not in ("stdout", "stderr"):
                raise ValidationFailed([FieldViolation("stream", "must be stdout or stderr")])
            if request.tail > MAX_LOG_TAIL:
                raise ValidationFailed([FieldViolation("tail", f"at most {MAX_LOG_TAIL} lines")])
            if request.id not in self.scheduler.state.tasks:
                raise NotFound(f"no task {request.id!r} in cluster {self.scheduler.cluster}")
            chunks = self.scheduler.backend.logs(
                request.id, stream, tail=request.tail or 100, follow=request.follow
            )
            async for data in chunks:
                yield scheduler_pb2.LogChunk(data=data)
        except BayError as exc:
            await abort_with(context, exc)

    @translate_errors
    async def ClusterStatus(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        return await cluster_status(self.scheduler, status_of)

    @translate_errors
    async def KillTask(self, request, context):  # type: ignore[no-untyped-def]
        who = self._principal(context, "operator")
        meta = EventMeta.command(who.name, metadata_value(context, "x-correlation-id"))
        task = await self.scheduler.kill_task(request.id, request.reason or f"operator ({who.name})", meta)
        return self._pb(task)
