"""``/v1/sd/prometheus``: Prometheus' HTTP service discovery of every Bay process and every ready
task with a ``metrics`` port (:mod:`services.gateway.discovery`). A viewer's token: the list names
hosts and ports, which is not for anyone who can reach the gateway."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.gateway.deps import BackendsDep, SettingsDep, Viewer
from services.gateway.discovery import process_targets, task_targets

router = APIRouter(prefix="/v1/sd", tags=["metrics"])


class SdTargetGroup(BaseModel):
    targets: list[str]
    labels: dict[str, str]


@router.get("/prometheus", response_model=list[SdTargetGroup])
async def prometheus_targets(_: Viewer, backends: BackendsDep, settings: SettingsDep) -> JSONResponse:
    """The full list every time (``[]`` when there is nothing to scrape), as ``http_sd_configs``
    reads it: Bay's processes (``bay_kind="process"``), then the ready tasks (``bay_kind="task"``)."""
    body = process_targets(settings.metrics_targets) + task_targets(backends.view)
    return JSONResponse(body)
