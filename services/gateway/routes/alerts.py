"""``/v1/alerts``: what is firing now, as the Alertmanager of the platform says it (``bay alerts``,
the UI). The gateway keeps no alert state: Alertmanager is the one that knows."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.alert_models import AlertList, alerts_from_api
from services.gateway.deps import BackendsDep, Viewer

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(_: Viewer, backends: BackendsDep) -> AlertList:
    """Alerts that are firing, not silenced and not inhibited, the most severe first. Without an
    Alertmanager configured (``BAY_ALERTMANAGER_URL``): ``configured`` false and no alerts. 503
    within the gateway's ``BAY_ALERTMANAGER_TIMEOUT_SECONDS`` when it is configured but does not
    answer."""
    if backends.alertmanager is None:
        return AlertList(configured=False, alerts=[])
    return AlertList(configured=True, alerts=alerts_from_api(await backends.alertmanager.active_alerts()))
