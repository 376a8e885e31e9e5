"""A task's health, from the results of its checks (Marathon's rules).

Failures during the grace period after start are ignored until the task has been healthy once (a
slow start is not a sick task); the first success makes it healthy; ``max_consecutive_failures``
failures in a row make it unhealthy, and an unhealthy task is replaced. Which tasks count as ready is
the shared rule, :func:`libs.views.ready`.
"""

from __future__ import annotations

from libs.spec import HealthCheck
from services.scheduler.domain.tasks import Task, TaskHealthChanged
from services.scheduler.ports import HealthCheckSpec


def observe(
    task: Task, check: HealthCheck | HealthCheckSpec, ok: bool, now: float, message: str = ""
) -> TaskHealthChanged | None:
    """The event one check result causes (None: nothing changed, or a failure in the grace period)."""
    if ok:
        if task.healthy is True and task.health_failures == 0:
            return None
        return TaskHealthChanged(task.id, True, 0, now, message)
    started = task.started_at if task.started_at is not None else task.launched_at
    if task.healthy is not True and now < started + check.grace_period_seconds:
        return None
    failures = task.health_failures + 1
    healthy = False if failures >= check.max_consecutive_failures else task.healthy
    return TaskHealthChanged(task.id, healthy, failures, now, message)


def spec_of(check: HealthCheck) -> HealthCheckSpec:
    """The backend's form of a group's health check."""
    return HealthCheckSpec(
        protocol=check.protocol,
        path=check.path,
        port_name=check.port_name,
        command=check.command,
        grace_period_seconds=check.grace_period_seconds,
        interval_seconds=check.interval_seconds,
        timeout_seconds=check.timeout_seconds,
        max_consecutive_failures=check.max_consecutive_failures,
    )
