"""``/v1/tasks``: one task, its logs, and killing it (each asks the scheduler of the task's cluster)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from bay.v1 import scheduler_pb2
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from libs.clients import find_task
from libs.defaults import MAX_LOG_TAIL
from libs.errors import BayError
from services.gateway.adapters import task_from_pb
from services.gateway.deps import BackendsDep, Operator, Registry, Schedulers, SettingsDep, Viewer
from services.gateway.models import Task
from services.gateway.params import LogStreamName
from services.gateway.sse import with_heartbeat

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
log = logging.getLogger("bay.gateway.tasks")


@router.get("/{task_id}")
async def get_task(task_id: str, _: Viewer, registry: Registry, schedulers: Schedulers) -> Task:
    __, task = await find_task(registry, schedulers, task_id)
    return task_from_pb(task)


async def log_body(
    chunks: AsyncIterator[scheduler_pb2.LogChunk], task_id: str, stop: asyncio.Event
) -> AsyncIterator[bytes]:
    """The chunks' bytes until the log ends or the gateway stops. A failure after the first byte
    aborts the response (no final chunk), so a client can tell a broken log from a finished one."""
    try:
        async for chunk in with_heartbeat(chunks, 3600.0, stop):
            if chunk is not None and chunk.data:
                yield chunk.data
    except BayError as exc:
        log.warning("log of task %s broke off: %s", task_id, exc.message)
        raise


@router.get(
    "/{task_id}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "the log's bytes, as they come"}},
)
async def task_logs(
    task_id: str,
    _: Viewer,
    registry: Registry,
    schedulers: Schedulers,
    backends: BackendsDep,
    settings: SettingsDep,
    stream: LogStreamName = "stdout",
    tail: Annotated[int, Query(ge=1, le=MAX_LOG_TAIL, description="lines of the past to start with")] = 100,
    follow: Annotated[bool, Query(description="then new output, until the task ends")] = False,
) -> StreamingResponse:
    """A task's stdout or stderr: the last ``tail`` lines, then (``follow``) new output as it is
    written, until the task ends or the client goes away."""
    sched, __ = await find_task(registry, schedulers, task_id)
    request = scheduler_pb2.TaskLogsRequest(id=task_id, stream=stream, tail=tail, follow=follow)
    chunks: AsyncIterator[scheduler_pb2.LogChunk] = await sched.open_stream(
        sched.stub.TaskLogs,
        request,
        first_within=settings.scheduler_timeout_seconds,
        first_required=False,  # a task that prints nothing yet is no error
    )
    return StreamingResponse(
        log_body(chunks, task_id, backends.closing),
        media_type="text/plain",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/{task_id}/kill")
async def kill_task(task_id: str, _: Operator, registry: Registry, schedulers: Schedulers) -> Task:
    """Kill one task. The group's count stays, so the scheduler starts a replacement: this is how
    an operator restarts one copy. Killing a task already on its way out changes nothing."""
    sched, __ = await find_task(registry, schedulers, task_id)
    return task_from_pb(await sched.kill_task(task_id))
