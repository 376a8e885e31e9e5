"""``/v1/groups/{name}/tasks`` and ``/status``: a group's tasks and counts, from its cluster's scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from bay.v1 import scheduler_pb2
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from libs.clients import group_scheduler
from libs.events.model import TaskState
from services.gateway import timetravel
from services.gateway.adapters import status_from_pb, task_from_pb
from services.gateway.deps import BackendsDep, Registry, Schedulers, SettingsDep, Viewer
from services.gateway.history_models import GroupTasksAt
from services.gateway.models import GroupStatus, GroupTasks
from services.gateway.params import TaskStateName
from services.gateway.sse import model_stream
from services.gateway.timetravel import AT_DESCRIPTION

router = APIRouter(prefix="/v1/groups", tags=["tasks"])


@router.get("/{name}/tasks")
async def group_tasks(
    name: str,
    _: Viewer,
    registry: Registry,
    schedulers: Schedulers,
    backends: BackendsDep,
    state: Annotated[TaskStateName | None, Query(description="only tasks in this state")] = None,
    all_: Annotated[bool, Query(alias="all", description="also the last few tasks that ended")] = False,
    at: Annotated[str | None, Query(description=AT_DESCRIPTION, max_length=64)] = None,
) -> GroupTasksAt | GroupTasks:
    """The group's tasks (oldest first) and its status: counts, and why tasks are pending. With
    ``at``: its tasks as they were then, from the log (``state`` and ``all`` filter them alike)."""
    if at is not None:
        past = timetravel.tasks_model(await timetravel.resolve(backends.events, name, at))
        past.tasks = [
            t
            for t in past.tasks
            if (state is None or t.state == state) and (all_ or state is not None or not _ended(t.state))
        ]
        return past
    sched = await group_scheduler(registry, schedulers, name)
    listed, status = await asyncio.gather(
        sched.list_tasks(name, state=state or "", include_terminal=all_), sched.group_status(name)
    )
    return GroupTasks(
        group=name,
        cluster=sched.cluster,
        status=status_from_pb(status),
        tasks=[task_from_pb(t) for t in listed],
    )


def _ended(state: str) -> bool:
    return TaskState(state).terminal


@router.get("/{name}/status")
async def group_status(name: str, _: Viewer, registry: Registry, schedulers: Schedulers) -> GroupStatus:
    """Desired, staged, running, ready... and the pending summary (placement failures, backoff)."""
    sched = await group_scheduler(registry, schedulers, name)
    return status_from_pb(await sched.group_status(name))


async def _statuses(replies: AsyncIterator[scheduler_pb2.GroupStatusReply]) -> AsyncIterator[GroupStatus]:
    async for reply in replies:
        yield status_from_pb(reply)


@router.get(
    "/{name}/status/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream_group_status(
    name: str,
    _: Viewer,
    registry: Registry,
    schedulers: Schedulers,
    backends: BackendsDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """The status now, then again at every change (``event: status``, ``data``: the GroupStatus);
    keep-alive comments when quiet. ``bay scale --wait`` follows it."""
    sched = await group_scheduler(registry, schedulers, name)
    replies: AsyncIterator[scheduler_pb2.GroupStatusReply] = await sched.open_stream(
        sched.stub.WatchGroup,
        scheduler_pb2.GroupStatusRequest(group=name),
        first_within=settings.scheduler_timeout_seconds,
        first_required=True,  # the scheduler answers a watch with the status at once
    )
    body = model_stream(
        _statuses(replies), "status", heartbeat=settings.sse_heartbeat_seconds, stop=backends.closing
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
