"""The scheduler's wire form of a task (``bay.v1.Task``, in replies and snapshots); its events are
:mod:`libs.events`' own."""

from __future__ import annotations

from bay.v1 import task_pb2

from libs.events.model import TaskState
from libs.views import NO_CAUSE, Cause, Task


def task_to_pb(task: Task, ready: bool) -> task_pb2.Task:
    out = task_pb2.Task(
        id=task.id,
        group=task.group,
        group_version=task.group_version,
        cluster=task.cluster,
        host_id=task.host_id,
        hostname=task.hostname,
        host_address=task.host_address,
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
        service=task.service,
        version=task.version,
        healthy_since=task.healthy_since or 0.0,
        kill_at=task.kill_at,
    )
    if task.healthy is not None:
        out.healthy = task.healthy
    if task.exit_code is not None:
        out.exit_code = task.exit_code
    return out


def task_from_pb(m: task_pb2.Task, cause: Cause = NO_CAUSE) -> Task:
    """A task back from its wire form (a snapshot's), with the last event ``cause`` kept beside it."""
    return Task(
        id=m.id,
        group=m.group,
        group_version=m.group_version,
        host_id=m.host_id,
        hostname=m.hostname,
        ports=dict(m.ports),
        state=TaskState(m.state),
        launched_at=m.launched_at,
        updated_at=m.updated_at,
        host_labels=dict(m.host_labels),
        cpus=m.cpus,
        mem=m.mem,
        disk=m.disk,
        healthy=m.healthy if m.HasField("healthy") else None,
        health_failures=m.health_failures,
        started_at=m.started_at or None,
        message=m.message,
        exit_code=m.exit_code if m.HasField("exit_code") else None,
        kill_reason=m.kill_reason,
        cluster=m.cluster,
        host_address=m.host_address,
        service=m.service,
        version=m.version,
        cause=cause,
        healthy_since=m.healthy_since or None,
        kill_at=m.kill_at,
    )
