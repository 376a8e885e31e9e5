"""The one fold of tasks, and the one readiness rule.

A task is one running copy of a group on one host. Its state follows its scheduler's events;
``kill_reason`` records that the scheduler asked it to go, so a task being killed no longer fills its
group's slot (its replacement may start while it stops). ``version`` is the task aggregate's version
(events applied) and ``cause`` its last event, which the scheduler's next event of the task names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from libs.events import model as m
from libs.events.model import TaskState
from libs.views.groups import NO_CAUSE, Cause, ImpossibleEvent

#: ended tasks kept per group (``bay tasks --all`` says how they ended); older ones are dropped in
#: the fold, deterministically, so replay and live agree
KEEP_ENDED = 10


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
    cluster: str = ""
    host_address: str = ""  # where clients reach its ports
    service: str = ""  # its group's DNS service at launch
    version: int = 0  # the task aggregate's version: events applied
    cause: Cause = NO_CAUSE
    healthy_since: float | None = None  # when its check last turned healthy; None: not healthy
    kill_at: float = 0.0  # a requested kill is sent at this time (a drain: out of DNS until then)

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def host(self) -> str:
        """Where clients reach it: its host's address, else (an older launch) its hostname."""
        return self.host_address or self.hostname

    @property
    def active(self) -> bool:
        """Fills one of its group's slots: alive, not being killed, not failed by its health check."""
        return not (self.state.terminal or self.kill_reason or self.state == TaskState.KILLING) and (
            self.healthy is not False
        )


_FIELDS = tuple(f.name for f in fields(Task))
_set = object.__setattr__


def _evolve(task: Task, **changes: object) -> Task:
    """``dataclasses.replace`` for a task, at half its cost (it runs for every task event)."""
    new = object.__new__(Task)
    for name in _FIELDS:
        _set(new, name, changes[name] if name in changes else getattr(task, name))
    return new


def why_not_ready(task: Task, health_checked: bool) -> str:
    """Empty when the task counts as serving (DNS answers it, deployments count it); else why not.

    Serving: running, not being killed, and healthy where its group has a check (else not reported
    unhealthy)."""
    if task.state != TaskState.RUNNING:
        return "not running"
    if task.kill_reason:
        return "being killed"
    if health_checked:
        if task.healthy is None:
            return "health not checked yet"
        if not task.healthy:
            return "unhealthy"
    elif task.healthy is False:
        return "unhealthy"
    return ""


def ready(task: Task, health_checked: bool) -> bool:
    """The readiness rule (see :func:`why_not_ready`), without the words."""
    if task.state != TaskState.RUNNING or task.kill_reason:
        return False
    return task.healthy is True if health_checked else task.healthy is not False


def ready_since(task: Task, health_checked: bool) -> float | None:
    """Since when the task has been ready without a break: its check turned healthy, or (no check)
    it started running. None: not ready."""
    if not ready(task, health_checked):
        return None
    return task.healthy_since if health_checked else task.started_at


def _since(task: Task, healthy: bool | None, at: float) -> float | None:
    if healthy is not True:
        return None
    return task.healthy_since if task.healthy is True and task.healthy_since is not None else at


def apply(task: Task | None, event: m.TaskEvent, cause: Cause = NO_CAUSE) -> Task:
    """Fold one task event. Updates after a terminal state are kept only if also terminal (a late
    RUNNING from a reconciliation must not resurrect a task we saw die)."""
    if isinstance(event, m.TaskLaunched):
        if task is not None:
            raise ImpossibleEvent(f"task {event.task_id} launched twice")
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
            cluster=event.cluster,
            host_address=event.host_address,
            service=event.service,
            version=1,
            cause=cause,
        )
    if task is None:
        raise ImpossibleEvent(f"{type(event).__name__} for unknown task {event.task_id}")
    version = task.version + 1
    if isinstance(event, m.TaskStatusChanged):
        if task.terminal and not event.state.terminal:
            return _evolve(task, version=version, cause=cause)
        started = task.started_at
        if started is None and event.state == TaskState.RUNNING:
            started = event.at
        healthy, failures = task.healthy, task.health_failures
        if event.healthy is not None:
            healthy, failures = event.healthy, 0 if event.healthy else failures
        return _evolve(
            task,
            healthy_since=_since(task, healthy, event.at),
            state=event.state,
            started_at=started,
            updated_at=event.at,
            message=event.message or event.reason or task.message,
            exit_code=event.exit_code if event.exit_code is not None else task.exit_code,
            healthy=healthy,
            health_failures=failures,
            version=version,
            cause=cause,
        )
    if isinstance(event, m.TaskHealthChanged):
        return _evolve(
            task,
            healthy=event.healthy,
            healthy_since=_since(task, event.healthy, event.at),
            health_failures=event.failures,
            updated_at=event.at,
            message=event.message or task.message,
            version=version,
            cause=cause,
        )
    if isinstance(event, m.TaskKillRequested):
        return _evolve(
            task,
            kill_reason=event.reason or "killed",
            kill_at=event.drain_until,
            updated_at=event.at,
            version=version,
            cause=cause,
        )
    raise TypeError(f"not a task event: {event!r}")


class TasksView:
    """Tasks by id and by group, of one cluster (or of all), with a window of ended ones.

    ``apply`` returns (before, after) for an event that changed a task, None for one it skips (a
    repeated launch, an update of a task already dropped from the window)."""

    def __init__(self, cluster: str | None = None, keep_ended: int = KEEP_ENDED) -> None:
        self.cluster = cluster
        self.keep_ended = keep_ended
        self.tasks: dict[str, Task] = {}
        self.by_group: dict[str, set[str]] = {}  # group -> ids of its tasks in ``tasks``
        self.ended: dict[str, deque[str]] = {}  # group -> its ended task ids, oldest first

    def of_group(self, group: str) -> list[Task]:
        tasks = self.tasks
        return [tasks[i] for i in self.by_group.get(group, ())]

    def apply(self, event: m.TaskEvent, cause: Cause = NO_CAUSE) -> tuple[Task | None, Task] | None:
        task_id = event.task_id
        before = self.tasks.get(task_id)
        if isinstance(event, m.TaskLaunched):
            if before is not None:
                return None  # a launch is recorded once; a repeat changes nothing
        elif before is None:
            return None  # an update for a task already dropped from the window of ended ones
        task = apply(before, event, cause)
        self.tasks[task_id] = task
        if before is None:
            self.by_group.setdefault(task.group, set()).add(task_id)
        if task.terminal and (before is None or not before.terminal):
            self._ended(task)
        return before, task

    def add(self, task: Task) -> None:
        """Put a task back as a snapshot holds it."""
        self.tasks[task.id] = task
        self.by_group.setdefault(task.group, set()).add(task.id)

    def _ended(self, task: Task) -> None:
        ended = self.ended.setdefault(task.group, deque())
        ended.append(task.id)
        while len(ended) > self.keep_ended:
            self._drop(ended.popleft(), task.group)
        if not ended:
            del self.ended[task.group]

    def _drop(self, task_id: str, group: str) -> None:
        self.tasks.pop(task_id, None)
        members = self.by_group.get(group)
        if members is not None:
            members.discard(task_id)
            if not members:
                del self.by_group[group]
