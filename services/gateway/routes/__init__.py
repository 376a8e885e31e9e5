"""One router per resource, each with its whole path (``/v1/groups``...): a route's ``path`` is then
the template metrics and traces are labelled with."""

from typing import Any

from fastapi import APIRouter

from services.gateway.models import Error
from services.gateway.routes import (
    alerts,
    autoscale,
    builds,
    charts,
    clusters,
    deployments,
    dns,
    events,
    group_logs,
    group_tasks,
    groups,
    health,
    overview,
    sd,
    tasks,
)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Error} for status in (400, 401, 403, 404, 409, 413, 415, 422, 503)
}

api_routers: list[APIRouter] = [
    groups.router,
    group_tasks.router,
    group_logs.router,
    charts.router,
    tasks.router,
    clusters.router,
    builds.router,
    events.router,
    dns.router,
    deployments.router,
    autoscale.router,
    alerts.router,
    sd.router,
    overview.router,
]

__all__ = ["ERROR_RESPONSES", "api_routers", "health"]
