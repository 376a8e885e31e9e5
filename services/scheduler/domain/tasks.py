"""The task aggregate and the scheduler's events: the shared contract and fold, as the scheduler's
domain names them (:mod:`libs.events.model`, :mod:`libs.views.tasks`)."""

from __future__ import annotations

from libs.events.model import (
    FrameworkRegistered,
    GroupBackoffChanged,
    PlacementFailed,
    SchedulerEvent,
    TaskEvent,
    TaskHealthChanged,
    TaskKillRequested,
    TaskLaunched,
    TaskState,
    TaskStatusChanged,
)
from libs.views.tasks import Task, apply

__all__ = [
    "FrameworkRegistered",
    "GroupBackoffChanged",
    "PlacementFailed",
    "SchedulerEvent",
    "Task",
    "TaskEvent",
    "TaskHealthChanged",
    "TaskKillRequested",
    "TaskLaunched",
    "TaskState",
    "TaskStatusChanged",
    "apply",
]
