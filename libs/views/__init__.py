"""The shared folds of the log: groups, tasks, the readiness rule, and a live view of them all."""

from libs.views.groups import NO_CAUSE, WEIGHT_LABEL, Cause, Group, ImpossibleEvent
from libs.views.live import open_view
from libs.views.platform import PlatformView
from libs.views.tasks import KEEP_ENDED, Task, TasksView, ready, why_not_ready

__all__ = [
    "KEEP_ENDED",
    "NO_CAUSE",
    "WEIGHT_LABEL",
    "Cause",
    "Group",
    "ImpossibleEvent",
    "PlatformView",
    "Task",
    "TasksView",
    "open_view",
    "ready",
    "why_not_ready",
]
