"""The task aggregate: folding launch, status, health and kill events."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.scheduler.domain import tasks as t
from services.scheduler.ports import TaskState


def launched(task_id: str = "web.1", at: float = 10.0) -> t.TaskLaunched:
    return t.TaskLaunched(task_id, "web", 2, "h1", "host1", {"http": 31000}, 0.5, 64, 0, at, {"zone": "a"})


def test_launch_then_running_sets_started_at_once() -> None:
    task = t.apply(None, launched())
    assert (task.state, task.launched_at, task.started_at, task.host_labels) == (
        TaskState.STAGING,
        10.0,
        None,
        {"zone": "a"},
    )
    assert task.active
    task = t.apply(task, t.TaskStatusChanged("web.1", TaskState.RUNNING, 12.0))
    task = t.apply(task, t.TaskStatusChanged("web.1", TaskState.RUNNING, 15.0, message="again"))
    assert (task.state, task.started_at, task.updated_at, task.message) == (
        TaskState.RUNNING,
        12.0,
        15.0,
        "again",
    )


def test_terminal_state_is_not_resurrected_by_a_late_update() -> None:
    task = t.apply(None, launched())
    task = t.apply(task, t.TaskStatusChanged("web.1", TaskState.FAILED, 12.0, exit_code=3, reason="R"))
    assert task.terminal and task.exit_code == 3 and task.message == "R" and not task.active
    late = t.apply(task, t.TaskStatusChanged("web.1", TaskState.RUNNING, 13.0))
    assert late == replace(task, version=task.version + 1)  # counted as applied, nothing else


def test_kill_request_and_unhealthy_free_the_slot() -> None:
    task = t.apply(None, launched())
    killed = t.apply(task, t.TaskKillRequested("web.1", "surplus", 11.0))
    assert killed.kill_reason == "surplus" and not killed.active and killed.state == TaskState.STAGING
    sick = t.apply(task, t.TaskHealthChanged("web.1", False, 3, 11.0, "timeout"))
    assert (sick.healthy, sick.health_failures, sick.message, sick.active) == (False, 3, "timeout", False)


def test_status_carrying_health_from_mesos() -> None:
    task = t.apply(None, launched())
    task = t.apply(task, t.TaskStatusChanged("web.1", TaskState.RUNNING, 12.0, healthy=True))
    assert task.healthy is True and task.health_failures == 0


def test_bad_sequences_are_refused() -> None:
    with pytest.raises(ValueError):
        t.apply(None, t.TaskStatusChanged("web.1", TaskState.RUNNING, 1.0))
    with pytest.raises(ValueError):
        t.apply(t.apply(None, launched()), launched())
