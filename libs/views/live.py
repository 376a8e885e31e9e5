"""A live view in one call: replayed from the log, then followed (for new readers of the log)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from libs.eventlog import EventLog, Projection
from libs.views.platform import PlatformView

V = TypeVar("V", bound=PlatformView)


async def open_view(
    event_log: EventLog,
    name: str,
    factory: Callable[[], V] = PlatformView,  # type: ignore[assignment]
) -> Projection[V]:
    """Start a projection of ``factory()`` over the whole log; it is current when this returns.
    ``projection.state`` is the view; ``await projection.stop()`` ends it."""
    projection: Projection[V] = Projection(
        name=name,
        log=event_log,
        initial=factory,
        apply=lambda view, rec: view.fold(rec),  # type: ignore[misc,return-value]
    )
    await projection.start()
    return projection
