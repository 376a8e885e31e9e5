"""The task aggregate and the scheduler's events (past tense), folded by :func:`apply`.

A task is one running copy of a group on one host. Its state follows the backend's status updates;
``kill_reason`` records that the scheduler asked for it to go, so a task being killed no longer fills
its group's slot (its replacement may start while it stops).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from services.scheduler.ports import TaskState


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    group: str
    group_version: int
    host_id: str
    hostname: str
    ports: Mapping[str, int]
    state: TaskState
    launched_at: float
    updated_at: float
    host_labels: Mapping[str, str] = field(default_factory=dict)  # for constraints on later placements
    cpus: float = 0.0
    mem: float = 0.0
    disk: float = 0.0
    healthy: bool | None = None  # None: not checked (yet)
    health_failures: int = 0  # consecutive
    started_at: float | None = None  # first RUNNING: the health grace period counts from here
    message: str = ""
    exit_code: int | None = None
    kill_reason: str = ""  # non-empty once the scheduler asked for a kill

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def active(self) -> bool:
        """Fills one of its group's slots: alive, not being killed, not failed by its health check."""
        return not (self.state.terminal or self.kill_reason or self.state == TaskState.KILLING) and (
            self.healthy is not False
        )


# ---- events (past tense) ----


@dataclass(frozen=True)
class TaskLaunched:
    task_id: str
    group: str
    group_version: int
    host_id: str
    hostname: str
    ports: Mapping[str, int]
    cpus: float
    mem: float
    disk: float
    at: float
    host_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskStatusChanged:
    task_id: str
    state: TaskState
    at: float
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    healthy: bool | None = None  # Mesos runs health checks itself and reports them with the status


@dataclass(frozen=True)
class TaskHealthChanged:
    task_id: str
    healthy: bool | None
    failures: int
    at: float
    message: str = ""


@dataclass(frozen=True)
class TaskKillRequested:
    task_id: str
    reason: str  # surplus | unhealthy | orphan | operator ...
    at: float


@dataclass(frozen=True)
class PlacementFailed:
    """``count`` tasks of ``group`` found no host; ``reasons`` = check -> hosts that failed it."""

    group: str
    count: int
    reasons: Mapping[str, int]
    hosts: int
    at: float


@dataclass(frozen=True)
class GroupBackoffChanged:
    """The group's launch delay grew (a task failed or finished) or was reset (new version)."""

    group: str
    version: int
    failures: int
    delay: float
    next_attempt_at: float


TaskEvent = TaskLaunched | TaskStatusChanged | TaskHealthChanged | TaskKillRequested
SchedulerEvent = TaskEvent | PlacementFailed | GroupBackoffChanged


def group_of(task_id: str) -> str:
    """Task ids are ``<group>.<uuid>``: the group is readable from the id."""
    return task_id.rsplit(".", 1)[0]


def apply(task: Task | None, event: TaskEvent) -> Task:
    """Fold one task event. Updates after a terminal state are kept only if also terminal (a late
    RUNNING from a reconciliation must not resurrect a task we saw die)."""
    if isinstance(event, TaskLaunched):
        if task is not None:
            raise ValueError(f"task {event.task_id} launched twice")
        return Task(
            id=event.task_id,
            group=event.group,
            group_version=event.group_version,
            host_id=event.host_id,
            hostname=event.hostname,
            ports=dict(event.ports),
            state=TaskState.STAGING,
            launched_at=event.at,
            updated_at=event.at,
            host_labels=dict(event.host_labels),
            cpus=event.cpus,
            mem=event.mem,
            disk=event.disk,
        )
    if task is None:
        raise ValueError(f"{type(event).__name__} for unknown task {event.task_id}")
    if isinstance(event, TaskStatusChanged):
        if task.terminal and not event.state.terminal:
            return task
        started = task.started_at
        if started is None and event.state == TaskState.RUNNING:
            started = event.at
        healthy, failures = task.healthy, task.health_failures
        if event.healthy is not None:
            healthy, failures = event.healthy, 0 if event.healthy else failures
        return replace(
            task,
            state=event.state,
            started_at=started,
            updated_at=event.at,
            message=event.message or event.reason or task.message,
            exit_code=event.exit_code if event.exit_code is not None else task.exit_code,
            healthy=healthy,
            health_failures=failures,
        )
    if isinstance(event, TaskHealthChanged):
        return replace(
            task,
            healthy=event.healthy,
            health_failures=event.failures,
            updated_at=event.at,
            message=event.message or task.message,
        )
    if isinstance(event, TaskKillRequested):
        return replace(task, kill_reason=event.reason or "killed", updated_at=event.at)
    raise TypeError(f"not a task event: {event!r}")
