"""The scheduler's wire form of a task (``bay.v1.Task``); its events are :mod:`libs.events`' own."""

from __future__ import annotations

from bay.v1 import task_pb2

from libs.views import Task


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
    )
    if task.healthy is not None:
        out.healthy = task.healthy
    if task.exit_code is not None:
        out.exit_code = task.exit_code
    return out
