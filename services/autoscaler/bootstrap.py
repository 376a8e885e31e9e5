"""The one place the autoscaler is wired: its projection, the service layer and its ports."""

from __future__ import annotations

import time
from collections.abc import Callable

from libs.eventlog import EventLog
from libs.views.live import open_view
from services.autoscaler.adapters.observe import Observer
from services.autoscaler.ports import ScalePort, WakePort
from services.autoscaler.service_layer.autoscaler import Autoscaler
from services.autoscaler.service_layer.view import AutoscalerView


async def bootstrap(
    event_log: EventLog,
    registry: ScalePort,
    observer: Observer,
    *,
    clock: Callable[[], float] = time.time,
    tick_seconds: float = 1.0,
    snapshot_seconds: float = 15.0,
    wakes: WakePort | None = None,
) -> Autoscaler:
    """An autoscaler over the whole log, replayed (current when this returns); run ``autoscaler.run``.
    Without ``wakes``, a group at zero is evaluated at its ticks only."""
    projection = await open_view(event_log, "autoscaler", AutoscalerView)
    return Autoscaler(
        event_log, projection, registry, observer,
        clock=clock, tick_seconds=tick_seconds, snapshot_seconds=snapshot_seconds, wakes=wakes,
    )  # fmt: skip
