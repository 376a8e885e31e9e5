"""Health state machine: grace period, first success, consecutive failures, readiness."""

from __future__ import annotations

from dataclasses import replace

from libs.spec import HealthCheck
from libs.views import ready
from services.scheduler.domain import health
from services.scheduler.domain import tasks as t
from services.scheduler.ports import TaskState

CHECK = HealthCheck(protocol="tcp", grace_period_seconds=10, max_consecutive_failures=3)


def running(at: float = 100.0) -> t.Task:
    task = t.apply(None, t.TaskLaunched("web.1", "web", 1, "h", "h", {}, 0.1, 32, 0, at - 1))
    return t.apply(task, t.TaskStatusChanged("web.1", TaskState.RUNNING, at))


def feed(task: t.Task, results: list[tuple[float, bool]]) -> t.Task:
    for now, ok in results:
        ev = health.observe(task, CHECK, ok, now)
        if ev is not None:
            task = t.apply(task, ev)
    return task


def test_failures_in_grace_are_ignored_then_count() -> None:
    task = feed(running(), [(101, False), (105, False), (109, False)])
    assert (task.healthy, task.health_failures) == (None, 0)
    task = feed(task, [(111, False), (112, False)])
    assert (task.healthy, task.health_failures) == (None, 2)
    task = feed(task, [(113, False)])
    assert task.healthy is False and not task.active  # it no longer fills its slot: replaced


def test_first_success_makes_healthy_and_grace_no_longer_protects() -> None:
    task = feed(running(), [(101, True)])
    assert task.healthy is True and ready(task, True)
    task = feed(task, [(102, False), (103, False)])
    assert (task.healthy, task.health_failures) == (True, 2)
    task = feed(task, [(104, True)])
    assert (task.healthy, task.health_failures) == (True, 0)
    task = feed(task, [(105, False), (106, False), (107, False)])
    assert task.healthy is False and not ready(task, True)


def test_success_when_already_healthy_is_no_event() -> None:
    task = feed(running(), [(101, True)])
    assert health.observe(task, CHECK, True, 102) is None


def test_ready_without_a_check_is_running() -> None:
    task = running()
    assert ready(task, False) and not ready(task, True)
    staging = replace(task, state=TaskState.STAGING)
    assert not ready(staging, False)
    assert not ready(replace(task, kill_reason="surplus"), False)


def test_spec_of_converts_for_the_backend() -> None:
    spec = health.spec_of(CHECK)
    assert (spec.protocol, spec.grace_period_seconds, spec.max_consecutive_failures) == ("tcp", 10, 3)
