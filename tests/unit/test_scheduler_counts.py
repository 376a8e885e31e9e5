"""A group's tasks counted in total and per version, each version by its own spec's readiness."""

from __future__ import annotations

from libs.events.model import VersionTarget
from libs.spec import validate_spec
from libs.views import Group
from services.scheduler.domain import tasks as t
from services.scheduler.domain.counts import VersionCounts, count
from services.scheduler.ports import TaskState

PLAIN = validate_spec({"name": "web", "cmd": "run"})
CHECKED = validate_spec(
    {"name": "web", "cmd": "run", "health_check": {"protocol": "command", "command": "true"}}
)


def task(tid: str, version: int, *events: t.TaskEvent) -> t.Task:
    out = t.apply(None, t.TaskLaunched(tid, "web", version, "h", "host", {}, 0.1, 16, 0, 100.0))
    for e in events:
        out = t.apply(out, e)
    return out


def running(tid: str) -> t.TaskStatusChanged:
    return t.TaskStatusChanged(tid, TaskState.RUNNING, 101.0)


def test_counts_per_version_by_each_versions_own_readiness() -> None:
    targets = (VersionTarget(1, PLAIN, 2), VersionTarget(2, CHECKED, 2, in_service=False))
    group = Group(CHECKED, 2, 3, 100.0, 100.0, 4, targets=targets)
    tasks = [
        task("a", 1, running("a")),  # no check in v1: ready when running
        task("b", 1),  # staging
        task("c", 2, running("c")),  # v2 has a check: not ready until healthy
        task("d", 2, running("d"), t.TaskHealthChanged("d", True, 0, 102.0)),
        task("e", 0, running("e")),  # a version without a target (going): judged by the current spec
        task("f", 0, running("f"), t.TaskKillRequested("f", "old-version", 103.0)),
    ]
    c = count(group, tasks, targets)
    assert (c.desired, c.staged, c.running, c.ready, c.killing, c.active) == (4, 1, 4, 2, 1, 5)
    assert c.versions == {
        0: VersionCounts(0, 0, False, running=1, ready=0, active=1),
        1: VersionCounts(1, 2, True, running=1, ready=1, active=2),
        2: VersionCounts(2, 2, False, running=2, ready=1, active=2),
    }
    assert c.missing == 0  # v0's task fills no slot of a version this cluster runs
    c = count(group, tasks[:1], targets)
    assert c.missing == 3  # one of v1 and two of v2 still to launch


def test_a_group_unknown_here_counts_nothing_desired() -> None:
    c = count(None, [task("a", 1, running("a"))])
    assert (c.desired, c.running, c.missing) == (0, 1, 0) and set(c.versions) == {1}
