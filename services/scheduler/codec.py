"""The scheduler's wire forms: domain events <-> protobuf payloads, tasks -> ``bay.v1.Task``.

Subjects: ``bay.ev.task.<cluster>.<task id>`` for a task's events (one writer: the cluster's
scheduler), ``bay.ev.sched.<cluster>.<group>`` for a group's placement failures and launch backoff,
``bay.ev.framework.<cluster>`` for the Mesos framework id. An event's time is its envelope's time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bay.v1 import task_pb2
from google.protobuf import message

from libs.eventlog.port import EVENT_SUBJECT_ROOT
from services.scheduler.domain.tasks import (
    GroupBackoffChanged,
    PlacementFailed,
    SchedulerEvent,
    Task,
    TaskHealthChanged,
    TaskKillRequested,
    TaskLaunched,
    TaskStatusChanged,
)
from services.scheduler.ports import TaskState

TASK = "task"
SCHED = "sched"
FRAMEWORK = "framework"


def task_subject(cluster: str, task_id: str) -> str:
    return f"{EVENT_SUBJECT_ROOT}.{TASK}.{cluster}.{task_id}"


def sched_subject(cluster: str, group: str) -> str:
    return f"{EVENT_SUBJECT_ROOT}.{SCHED}.{cluster}.{group}"


def framework_subject(cluster: str) -> str:
    return f"{EVENT_SUBJECT_ROOT}.{FRAMEWORK}.{cluster}"


def cluster_filter(cluster: str) -> tuple[str, str, str]:
    """Subject prefixes of one cluster's scheduler events (for a fold that sees the whole stream)."""
    return (
        f"{EVENT_SUBJECT_ROOT}.{TASK}.{cluster}.",
        f"{EVENT_SUBJECT_ROOT}.{SCHED}.{cluster}.",
        framework_subject(cluster),
    )


def address_of(event: SchedulerEvent) -> tuple[str, str]:
    """(aggregate type, aggregate id) of an event, for its envelope."""
    if isinstance(event, PlacementFailed | GroupBackoffChanged):
        return SCHED, event.group
    return TASK, event.task_id


def subject_of(cluster: str, event: SchedulerEvent) -> str:
    kind, ident = address_of(event)
    return task_subject(cluster, ident) if kind == TASK else sched_subject(cluster, ident)


def time_of(event: SchedulerEvent) -> float:
    return event.next_attempt_at - event.delay if isinstance(event, GroupBackoffChanged) else event.at


def to_pb(
    event: SchedulerEvent, *, cluster: str = "", host_address: str = "", service: str = ""
) -> message.Message:
    if isinstance(event, TaskLaunched):
        return task_pb2.TaskLaunched(
            group=event.group,
            group_version=event.group_version,
            cluster=cluster,
            host_id=event.host_id,
            hostname=event.hostname,
            host_address=host_address,
            ports=dict(event.ports),
            cpus=event.cpus,
            mem=event.mem,
            disk=event.disk,
            host_labels=dict(event.host_labels),
            service=service,
        )
    if isinstance(event, TaskStatusChanged):
        st = task_pb2.TaskStatusChanged(state=event.state.value, reason=event.reason, message=event.message)
        if event.exit_code is not None:
            st.exit_code = event.exit_code
        if event.healthy is not None:
            st.healthy = event.healthy
        return st
    if isinstance(event, TaskHealthChanged):
        hc = task_pb2.TaskHealthChanged(failures=event.failures, message=event.message)
        if event.healthy is not None:
            hc.healthy = event.healthy
        return hc
    if isinstance(event, TaskKillRequested):
        return task_pb2.TaskKillRequested(reason=event.reason)
    if isinstance(event, PlacementFailed):
        return task_pb2.PlacementFailed(
            group=event.group, count=event.count, reasons=dict(event.reasons), hosts=event.hosts
        )
    if isinstance(event, GroupBackoffChanged):
        return task_pb2.GroupBackoffChanged(
            group=event.group,
            version=event.version,
            failures=event.failures,
            delay=event.delay,
            next_attempt_at=event.next_attempt_at,
        )
    raise TypeError(f"not a scheduler event: {event!r}")


def _launched(ident: str, at: float, m: Any) -> TaskLaunched:
    return TaskLaunched(
        ident, m.group, m.group_version, m.host_id, m.hostname, dict(m.ports),
        m.cpus, m.mem, m.disk, at, dict(m.host_labels),
    )  # fmt: skip


def _status(ident: str, at: float, m: Any) -> TaskStatusChanged:
    return TaskStatusChanged(
        ident,
        TaskState(m.state),
        at,
        m.reason,
        m.message,
        m.exit_code if m.HasField("exit_code") else None,
        m.healthy if m.HasField("healthy") else None,
    )


def _health(ident: str, at: float, m: Any) -> TaskHealthChanged:
    return TaskHealthChanged(ident, m.healthy if m.HasField("healthy") else None, m.failures, at, m.message)


# type name -> (message class, decoder(aggregate id, time, message))
DECODERS: dict[str, tuple[type[message.Message], Callable[[str, float, Any], SchedulerEvent]]] = {
    "TaskLaunched": (task_pb2.TaskLaunched, _launched),
    "TaskStatusChanged": (task_pb2.TaskStatusChanged, _status),
    "TaskHealthChanged": (task_pb2.TaskHealthChanged, _health),
    "TaskKillRequested": (task_pb2.TaskKillRequested, lambda i, at, m: TaskKillRequested(i, m.reason, at)),
    "PlacementFailed": (
        task_pb2.PlacementFailed,
        lambda i, at, m: PlacementFailed(m.group, m.count, dict(m.reasons), m.hosts, at),
    ),
    "GroupBackoffChanged": (
        task_pb2.GroupBackoffChanged,
        lambda i, at, m: GroupBackoffChanged(m.group, m.version, m.failures, m.delay, m.next_attempt_at),
    ),
}


def task_to_pb(task: Task, cluster: str, address: str, ready: bool) -> task_pb2.Task:
    out = task_pb2.Task(
        id=task.id,
        group=task.group,
        group_version=task.group_version,
        cluster=cluster,
        host_id=task.host_id,
        hostname=task.hostname,
        host_address=address,
        ports=dict(task.ports),
        state=task.state.value,
        ready=ready,
        health_failures=task.health_failures,
        launched_at=task.launched_at,
        started_at=task.started_at or 0.0,
        updated_at=task.updated_at,
        message=task.message,
        kill_reason=task.kill_reason,
        cpus=task.cpus,
        mem=task.mem,
        disk=task.disk,
        host_labels=dict(task.host_labels),
    )
    if task.healthy is not None:
        out.healthy = task.healthy
    if task.exit_code is not None:
        out.exit_code = task.exit_code
    return out
