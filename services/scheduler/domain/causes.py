"""What caused each scheduler event (its envelope's causation and correlation, and the trace it joins).

A launch, a surplus or orphan kill, a placement failure and a backoff reset are caused by the group's
last event (the GroupScaled, GroupCreated or GroupDeleted behind them); a task's later events (its
status and health, a kill for ill health) by the task's own last event. Pure: state in, cause out.
"""

from __future__ import annotations

from libs.events import model as m
from libs.views import NO_CAUSE, Cause, PlatformView

#: kills the group's change asked for; other kills follow from the task itself
_GROUP_KILLS = frozenset({"surplus", "orphan"})


def cause_of(state: PlatformView, event: m.SchedulerEvent) -> Cause:
    if isinstance(event, m.TaskLaunched):
        return _group(state, event.group)
    if isinstance(event, m.PlacementFailed | m.GroupBackoffChanged):
        return _group(state, event.group)
    if isinstance(event, m.FrameworkRegistered):
        return NO_CAUSE
    task = state.tasks.get(event.task_id)
    if task is None:
        return NO_CAUSE
    if isinstance(event, m.TaskKillRequested) and event.reason in _GROUP_KILLS:
        group = state.groups.get(task.group)
        if group is not None:
            return group.cause
    return task.cause


def _group(state: PlatformView, name: str) -> Cause:
    g = state.groups.get(name)
    return g.cause if g is not None else NO_CAUSE
