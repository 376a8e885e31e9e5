"""Marathon's launch backoff: 1 s, x1.15, capped; FAILED/FINISHED only; reset on a new version."""

from __future__ import annotations

import pytest

from libs.spec import Backoff
from services.scheduler.domain import backoff as bo
from services.scheduler.ports import TaskState

POLICY = Backoff(backoff_seconds=1.0, backoff_factor=1.15, max_launch_delay_seconds=3.0)


def fail_n(n: int, state: TaskState = TaskState.FAILED, now: float = 100.0) -> bo.GroupBackoff | None:
    cur = None
    for _ in range(n):
        ev = bo.on_task_ended(cur, "web", 1, 1, state, POLICY, now)
        if ev is not None:
            cur = bo.apply(cur, ev)
    return cur


def test_grows_by_factor_and_is_capped() -> None:
    delays = []
    cur = None
    for _ in range(12):
        ev = bo.on_task_ended(cur, "web", 1, 1, TaskState.FAILED, POLICY, 100.0)
        assert ev is not None
        cur = bo.apply(cur, ev)
        delays.append(round(cur.delay, 4))
    assert delays[:3] == [1.0, 1.15, 1.3225]
    assert max(delays) == 3.0 and delays[-1] == 3.0
    assert cur is not None and cur.failures == 12 and cur.next_attempt_at == 103.0


def test_finished_counts_killed_does_not() -> None:
    finished = fail_n(2, TaskState.FINISHED)
    assert finished is not None and finished.delay == pytest.approx(1.15)
    assert fail_n(3, TaskState.KILLED) is None


def test_waiting_until_next_attempt_and_only_for_that_version() -> None:
    cur = fail_n(1, now=100.0)
    assert cur is not None
    assert cur.waiting(1, 100.5) and not cur.waiting(1, 101.0) and not cur.waiting(2, 100.5)


def test_new_version_resets_and_old_version_failures_are_ignored() -> None:
    cur = fail_n(5)
    reset = bo.on_new_version(cur, 2, 150.0)
    assert reset is not None and (reset.failures, reset.delay, reset.version) == (0, 0.0, 2)
    assert reset.at == 150.0  # a reset is dated when it happened, not at the epoch
    fresh = bo.apply(cur, reset)
    assert bo.on_new_version(fresh, 2, 150.0) is None
    assert bo.on_task_ended(fresh, "web", 2, 1, TaskState.FAILED, POLICY, 200.0) is None
    ev = bo.on_task_ended(fresh, "web", 2, 2, TaskState.FAILED, POLICY, 200.0)
    assert ev is not None and (ev.delay, ev.failures, ev.next_attempt_at) == (1.0, 1, 201.0)
