"""Marathon's launch backoff, per group.

The first failure of a group's task delays the next launch by ``backoff_seconds``; each further
FAILED or FINISHED (not KILLED: a kill is our doing, not the task's) multiplies the delay by
``backoff_factor``, up to ``max_launch_delay_seconds``. A new group version starts afresh: the
operator changed something, so the next try should be immediate.

Backoff is for tasks that fail to start. A task that was ready before it ended (it passed its
health check; without one, it ran ``STARTED_AFTER_SECONDS``) has started: its end, whatever caused
it, does not count, so a hundred ready tasks killed at once from outside are replaced at once
rather than after minutes of a delay grown a hundred times over.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.events.model import GroupBackoffChanged, TaskState
from libs.spec import Backoff
from libs.views import Task

COUNTED = frozenset({TaskState.FAILED, TaskState.FINISHED, TaskState.ERROR})
#: without a health check, a task that ran this long had started (a crash loop ends sooner)
STARTED_AFTER_SECONDS = 10.0


def failed_to_start(before: Task, ended_at: float, health_checked: bool) -> bool:
    """Does the end of a task (``before``: as it was until it ended) count as a failure to start?"""
    if health_checked:
        return before.healthy is not True
    started = before.started_at
    return started is None or ended_at - started < STARTED_AFTER_SECONDS


@dataclass(frozen=True, slots=True)
class GroupBackoff:
    group: str
    version: int
    failures: int
    delay: float  # the delay last applied; 0 after a reset
    next_attempt_at: float  # no launch for this group before this time

    def waiting(self, version: int, now: float) -> bool:
        """Is a launch of ``version`` held back at ``now``?"""
        return self.version == version and self.failures > 0 and now < self.next_attempt_at


def on_task_ended(
    state: GroupBackoff | None,
    group: str,
    version: int,
    task_version: int,
    ended: TaskState,
    policy: Backoff,
    now: float,
) -> GroupBackoffChanged | None:
    """The event a task's end causes, if any. ``version`` is the group's current version; a task of an
    older version ending does not hold back the new one."""
    if ended not in COUNTED or task_version < version:
        return None
    if state is None or state.version != version or state.failures == 0:
        delay, failures = policy.backoff_seconds, 1
    else:
        delay = min(state.delay * policy.backoff_factor, policy.max_launch_delay_seconds)
        failures = state.failures + 1
    delay = min(delay, policy.max_launch_delay_seconds)
    return GroupBackoffChanged(group, version, failures, delay, now + delay, now)


def on_new_version(state: GroupBackoff | None, version: int, now: float) -> GroupBackoffChanged | None:
    """Reset when the group moved to a new version (None when there is nothing to reset)."""
    if state is None or state.version >= version:
        return None
    return GroupBackoffChanged(state.group, version, 0, 0.0, 0.0, now)


def apply(state: GroupBackoff | None, event: GroupBackoffChanged) -> GroupBackoff:
    return GroupBackoff(event.group, event.version, event.failures, event.delay, event.next_attempt_at)
