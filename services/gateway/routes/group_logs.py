"""``/v1/groups/{name}/logs``: the logs of every task of a group, merged (``bay logs GROUP``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from libs.defaults import MAX_LOG_TAIL
from services.gateway.deps import BackendsDep, Registry, Schedulers, SettingsDep, Viewer
from services.gateway.grouplogs import LogRequest, group_log
from services.gateway.params import LogStreamName

router = APIRouter(prefix="/v1/groups", tags=["tasks"])


@router.get(
    "/{name}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "`<task-id> | <line>`, as they come"}},
)
async def group_logs(
    name: str,
    _: Viewer,
    registry: Registry,
    schedulers: Schedulers,
    backends: BackendsDep,
    settings: SettingsDep,
    stream: LogStreamName = "stdout",
    tail: Annotated[
        int, Query(ge=1, le=MAX_LOG_TAIL, description="lines of the past to start with, per task")
    ] = 10,
    follow: Annotated[
        bool, Query(description="then new lines; tasks that start join; ends when the group is deleted")
    ] = False,
) -> StreamingResponse:
    """Every live task of the group (on any cluster): its last ``tail`` lines, then (``follow``) new
    lines as they are written, each line as ``<task-id> | <line>``, the tasks' lines merged as they
    come. A task whose log cannot be read has one line that says why."""
    view = backends.view
    known = view.groups.get(name)
    if known is None or known.deleted:
        await registry.get_group(name)  # the view may lag behind a group just made; else 404
    req = LogRequest(name, stream, tail, follow, settings.scheduler_timeout_seconds)
    return StreamingResponse(
        group_log(req, view, schedulers, backends.closing),
        media_type="text/plain",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
