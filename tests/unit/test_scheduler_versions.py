"""The scheduler runs version targets: each version its own count, old versions killed, serving
tasks drained before their kill, a crashing new version not holding back the stable one."""

from __future__ import annotations

from dataclasses import replace

from libs.spec import validate_spec
from services.scheduler.domain import backoff as bo
from services.scheduler.domain import tasks as t
from services.scheduler.domain.reconcile import Decision, Desired, decide
from services.scheduler.ports import Host, PortRange, TaskState

HOSTS = [Host(f"a{i}", f"host{i}", {}, 8, 8192, 0, (PortRange(31000, 31099),)) for i in range(4)]


def spec(cmd: str = "run", **kw: object) -> object:
    return validate_spec({"name": "web", "cmd": cmd, "resources": {"cpus": 0.1, "mem": 16}, **kw})


def targets(*wants: tuple[int, int]) -> dict[str, Desired]:
    """(version, instances) pairs, the newest first."""
    ds = [Desired(spec(f"run v{v}"), v, n) for v, n in sorted(wants, reverse=True)]  # type: ignore[arg-type]
    return {"web": replace(ds[0], others=tuple(ds[1:]))}


def run(state: dict[str, t.Task], d: Decision, now: float, *, end_kills: bool = True) -> dict[str, t.Task]:
    out = dict(state)
    for ev in d.events:
        if isinstance(ev, t.TaskLaunched | t.TaskKillRequested):
            out[ev.task_id] = t.apply(out.get(ev.task_id), ev)
    for launch in d.launches:
        out[launch.task_id] = t.apply(
            out[launch.task_id], t.TaskStatusChanged(launch.task_id, TaskState.RUNNING, now)
        )
    if end_kills:
        for k in d.kills:
            if k.drain_until <= now:
                out[k.task_id] = t.apply(
                    out[k.task_id], t.TaskStatusChanged(k.task_id, TaskState.KILLED, now)
                )
    return out


def live(state: dict[str, t.Task]) -> dict[int, int]:
    out: dict[int, int] = {}
    for x in state.values():
        if x.active:
            out[x.group_version] = out.get(x.group_version, 0) + 1
    return out


def test_each_version_keeps_its_own_count_and_old_versions_go() -> None:
    state = run({}, decide(targets((1, 3)), [], HOSTS, {}, 10.0, seed=1), 10.0)
    assert live(state) == {1: 3}
    d = decide(targets((1, 3), (2, 2)), state.values(), HOSTS, {}, 11.0, seed=2)
    assert d.kills == () and [x.group_version for x in d.launches] == [2, 2]
    assert {x.cmd for x in d.launches} == {"run v2"}  # each version launches with its own spec
    state = run(state, d, 11.0)
    assert live(state) == {1: 3, 2: 2}
    d = decide(targets((1, 1), (2, 3)), state.values(), HOSTS, {}, 12.0, seed=3)
    assert sorted(k.reason for k in d.kills) == ["surplus", "surplus"]
    assert all(state[k.task_id].group_version == 1 for k in d.kills)  # never the new ones
    state = run(state, d, 12.0)
    assert live(state) == {1: 1, 2: 3}
    d = decide(targets((2, 3)), state.values(), HOSTS, {}, 13.0, seed=4)
    assert [(k.reason, state[k.task_id].group_version) for k in d.kills] == [("old-version", 1)]
    assert live(run(state, d, 13.0)) == {2: 3}


def test_surplus_goes_not_ready_first() -> None:
    state = run({}, decide(targets((1, 3)), [], HOSTS, {}, 10.0, seed=1), 10.0)
    d = decide(targets((1, 4)), state.values(), HOSTS, {}, 20.0, seed=2)
    youngest = d.launches[0].task_id
    state = run(state, d, 20.0)
    starting = t.apply(state[youngest], t.TaskStatusChanged(youngest, TaskState.STARTING, 20.0))
    older = sorted((x for x in state.values() if x.id != youngest), key=lambda x: x.launched_at)[0]
    state[older.id] = t.apply(older, t.TaskStatusChanged(older.id, TaskState.STARTING, 21.0))
    state[youngest] = starting
    d = decide(targets((1, 2)), state.values(), HOSTS, {}, 30.0)
    # both not ready: the youngest of them first, then the other not-ready one, no ready task
    assert [k.task_id for k in d.kills] == [youngest, older.id]


def test_serving_tasks_are_drained_before_their_kill() -> None:
    state = run({}, decide(targets((1, 2)), [], HOSTS, {}, 10.0, seed=1), 10.0)
    d = decide(targets((2, 2)), state.values(), HOSTS, {}, 20.0, seed=2, drain_seconds=6.0)
    assert {k.reason for k in d.kills} == {"old-version"} and {k.drain_until for k in d.kills} == {26.0}
    assert all(e.drain_until == 26.0 for e in d.events if isinstance(e, t.TaskKillRequested))
    state = run(state, d, 20.0, end_kills=False)
    during = decide(targets((2, 2)), state.values(), HOSTS, {}, 23.0, drain_seconds=6.0)
    assert during.owed == () and during.draining_until == 26.0 and during.kills == ()
    after = decide(targets((2, 2)), state.values(), HOSTS, {}, 26.5, drain_seconds=6.0)
    assert sorted(after.owed) == sorted(k.task_id for k in d.kills) and after.draining_until == 0.0


def test_a_task_that_is_not_serving_is_killed_at_once() -> None:
    d0 = decide(targets((1, 1)), [], HOSTS, {}, 10.0, seed=1)
    state = run({}, d0, 10.0)
    tid = d0.launches[0].task_id
    state[tid] = t.apply(state[tid], t.TaskStatusChanged(tid, TaskState.STARTING, 11.0))
    d = decide(targets((2, 1)), state.values(), HOSTS, {}, 20.0, drain_seconds=6.0)
    assert [(k.task_id, k.drain_until) for k in d.kills] == [(tid, 0.0)]


def test_a_crashing_new_version_does_not_hold_back_the_stable_one() -> None:
    held = {"web": bo.GroupBackoff("web", 2, 3, 30.0, 1000.0)}
    d = decide(targets((1, 2), (2, 1)), [], HOSTS, held, 10.0, seed=1)
    assert [x.group_version for x in d.launches] == [1, 1]
    assert d.delayed == {"web": 1000.0}
