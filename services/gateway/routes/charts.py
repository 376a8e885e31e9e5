"""``/v1/groups/{name}/charts``: what the group page draws: its ready and desired counts over time
(from the log) and its CPU and memory (the usage samples the gateway received)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from libs.errors import NotFound
from libs.views.timetravel import ready_history
from services.gateway.deps import BackendsDep, Viewer
from services.gateway.history_models import GroupCharts, ReadySample, UsageSample

router = APIRouter(prefix="/v1/groups", tags=["groups"])


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@router.get("/{name}/charts")
async def group_charts(
    name: str,
    _: Viewer,
    backends: BackendsDep,
    minutes: Annotated[float, Query(gt=0, le=1440, description="how far back")] = 60,
) -> GroupCharts:
    """Ready and desired counts (every change, from the log) and CPU and memory (one point per
    usage batch; the gateway keeps ``BAY_USAGE_KEEP_SECONDS`` of them) over the last ``minutes``."""
    if name not in backends.view.groups:
        raise NotFound(f"group {name!r} not found", hint="`bay get groups` lists them")
    since = time.time() - minutes * 60
    ready = await ready_history(backends.events, name, since)
    usage = backends.usage.of_group(name, since)
    return GroupCharts(
        group=name,
        since=_when(since),
        ready=[
            ReadySample(time=_when(p.time), sequence=p.sequence, ready=p.ready, desired=p.desired)
            for p in ready
        ],
        usage=[UsageSample(time=_when(p.at), cpu=p.cpu, mem=p.mem, tasks=p.tasks) for p in usage],
    )
