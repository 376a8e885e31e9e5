"""Reconciliation: launch the missing, kill surplus/unhealthy/orphans, respect backoff and limits."""

from __future__ import annotations

import random
from typing import Any

from libs.spec import GroupSpec, validate_spec
from services.scheduler.domain import backoff as bo
from services.scheduler.domain import kills
from services.scheduler.domain import tasks as t
from services.scheduler.domain.reconcile import Decision, Desired, Kill, backoff_events, decide
from services.scheduler.ports import Host, PortRange, TaskState


def spec(name: str = "web", **kw: Any) -> GroupSpec:
    return validate_spec({"name": name, "cmd": "run", "resources": {"cpus": 0.5, "mem": 64}, **kw})


def want(name: str = "web", instances: int = 3, version: int = 1, **kw: Any) -> dict[str, Desired]:
    return {name: Desired(spec(name, **kw), version, instances)}


HOSTS = [
    Host(f"a{i}", f"host{i}", {"zone": "ab"[i % 2]}, 8, 8192, 0, (PortRange(31000, 31099),)) for i in range(4)
]


def fold(state: dict[str, t.Task], decision: Decision, now: float, run: bool = True) -> dict[str, t.Task]:
    """Apply a decision's events, then let the backend act: launches run, kills end."""
    out = dict(state)
    for ev in decision.events:
        if isinstance(ev, t.TaskLaunched | t.TaskKillRequested):
            out[ev.task_id] = t.apply(out.get(ev.task_id), ev)
    if run:
        for launch in decision.launches:
            out[launch.task_id] = t.apply(
                out[launch.task_id], t.TaskStatusChanged(launch.task_id, TaskState.RUNNING, now)
            )
        for k in decision.kills:
            out[k.task_id] = t.apply(out[k.task_id], t.TaskStatusChanged(k.task_id, TaskState.KILLED, now))
    return out


def active(state: dict[str, t.Task], group: str = "web") -> list[t.Task]:
    return [x for x in state.values() if x.group == group and x.active]


def test_launches_what_is_missing_once() -> None:
    d = decide(want(instances=3), [], HOSTS, {}, 100.0, seed=1)
    assert len(d.launches) == 3 and d.kills == () and d.failures == ()
    assert all(x.task_id.startswith("web.") and x.group_version == 1 for x in d.launches)
    assert [type(e).__name__ for e in d.events] == ["TaskLaunched"] * 3
    state = fold({}, d, 100.0, run=False)  # still STAGING: the slot is taken
    again = decide(want(instances=3), state.values(), HOSTS, {}, 101.0, seed=2)
    assert again.launches == () and again.idle


def test_surplus_is_killed_youngest_first() -> None:
    state: dict[str, t.Task] = {}
    for i in range(4):
        d = decide(want(instances=i + 1), state.values(), HOSTS, {}, 100.0 + i, seed=i)
        state = fold(state, d, 100.0 + i)
    ages = sorted(active(state), key=lambda x: x.launched_at)
    d = decide(want(instances=2), state.values(), HOSTS, {}, 200.0)
    assert d.kills == (Kill(ages[3].id, "surplus"), Kill(ages[2].id, "surplus"))
    assert d.launches == ()
    assert [type(e).__name__ for e in d.events] == ["TaskKillRequested"] * 2


def test_failed_lost_and_unhealthy_are_replaced() -> None:
    state = fold({}, decide(want(instances=3), [], HOSTS, {}, 100.0, seed=1), 100.0)
    a, b, c = sorted(state)
    state[a] = t.apply(state[a], t.TaskStatusChanged(a, TaskState.FAILED, 110.0))
    state[b] = t.apply(state[b], t.TaskStatusChanged(b, TaskState.LOST, 110.0))
    state[c] = t.apply(state[c], t.TaskHealthChanged(c, False, 3, 110.0))
    d = decide(want(instances=3), state.values(), HOSTS, {}, 111.0, seed=2)
    assert d.kills == (Kill(c, "unhealthy"),)
    assert len(d.launches) == 3
    state = fold(state, d, 111.0)
    assert len(active(state)) == 3
    assert decide(want(instances=3), state.values(), HOSTS, {}, 112.0).idle


def test_tasks_of_a_deleted_group_are_orphans() -> None:
    state = fold({}, decide(want("old", 2), [], HOSTS, {}, 100.0, seed=1), 100.0)
    d = decide(want("web", 1), state.values(), HOSTS, {}, 101.0, seed=2)
    assert sorted(k.reason for k in d.kills) == ["orphan", "orphan"] and len(d.launches) == 1
    state = fold(state, d, 101.0, run=False)
    assert [k for k in decide(want("web", 1), state.values(), HOSTS, {}, 102.0).kills] == []


def test_backoff_holds_launches_until_next_attempt() -> None:
    delay = bo.GroupBackoff("web", 1, 2, 1.15, 105.0)
    d = decide(want(instances=2), [], HOSTS, {"web": delay}, 104.0)
    assert d.launches == () and d.delayed == {"web": 105.0} and not d.idle
    assert len(decide(want(instances=2), [], HOSTS, {"web": delay}, 105.0).launches) == 2


def test_new_version_resets_backoff_and_launches_at_once() -> None:
    delay = bo.GroupBackoff("web", 1, 5, 2.0, 500.0)
    d = decide(want(instances=1, version=2), [], HOSTS, {"web": delay}, 104.0)
    assert len(d.launches) == 1 and d.launches[0].group_version == 2
    assert d.events[0] == t.GroupBackoffChanged("web", 2, 0, 0.0, 0.0, 104.0)


def test_backoff_events_from_a_terminal_task() -> None:
    state = fold({}, decide(want(instances=1), [], HOSTS, {}, 100.0), 100.0)
    (tid,) = state
    failed = t.apply(state[tid], t.TaskStatusChanged(tid, TaskState.FAILED, 103.0))
    ev = backoff_events(want(instances=1), {}, state[tid], failed, 103.0)
    assert ev is not None and (ev.failures, ev.next_attempt_at) == (1, 104.0)
    killed = t.apply(state[tid], t.TaskStatusChanged(tid, TaskState.KILLED, 103.0))
    assert backoff_events(want(instances=1), {}, state[tid], killed, 103.0) is None


HC = {"health_check": {"protocol": "http", "port_name": "http"}, "ports": [{"name": "http"}]}


def test_a_task_that_was_ready_before_it_ended_does_not_grow_the_backoff() -> None:
    checked = want(instances=1, **HC)
    state = fold({}, decide(checked, [], HOSTS, {}, 100.0), 100.0)
    (tid,) = state
    running = state[tid]
    healthy = t.apply(running, t.TaskHealthChanged(tid, True, 0, 101.0))
    for before in (healthy, t.apply(healthy, t.TaskHealthChanged(tid, True, 1, 101.5))):
        ended = t.apply(before, t.TaskStatusChanged(tid, TaskState.FAILED, 102.0, exit_code=137))
        assert backoff_events(checked, {}, before, ended, 102.0) is None  # ready, then killed outside
    # never healthy: it failed to start, however long it ran
    ended = t.apply(running, t.TaskStatusChanged(tid, TaskState.FAILED, 500.0))
    ev = backoff_events(checked, {}, running, ended, 500.0)
    assert ev is not None and ev.failures == 1
    # without a health check: ready once it ran STARTED_AFTER_SECONDS; a quicker end is a crash loop
    plain = want(instances=1)
    late = bo.STARTED_AFTER_SECONDS + 100.0
    ended = t.apply(running, t.TaskStatusChanged(tid, TaskState.FAILED, late))
    assert backoff_events(plain, {}, running, ended, late) is None
    soon = 100.0 + bo.STARTED_AFTER_SECONDS / 2
    ended = t.apply(running, t.TaskStatusChanged(tid, TaskState.FINISHED, soon))
    assert backoff_events(plain, {}, running, ended, soon) is not None


def test_a_hundred_ready_tasks_killed_at_once_are_replaced_at_once() -> None:
    checked = want(instances=100, **HC)
    big = [Host("a", "host", {}, 100, 100_000, 0, (PortRange(31000, 31199),))]
    state = fold({}, decide(checked, [], big, {}, 100.0), 100.0)
    state = {k: t.apply(v, t.TaskHealthChanged(k, True, 0, 101.0)) for k, v in state.items()}
    backoff: dict[str, bo.GroupBackoff] = {}
    for tid, task in list(state.items()):
        state[tid] = t.apply(task, t.TaskStatusChanged(tid, TaskState.FAILED, 200.0, exit_code=137))
        ev = backoff_events(checked, backoff, task, state[tid], 200.0)
        if ev is not None:
            backoff["web"] = bo.apply(backoff.get("web"), ev)
    assert backoff == {}
    again = decide(checked, state.values(), big, backoff, 200.1)
    assert len(again.launches) == 100 and not again.delayed


def test_a_requested_kill_is_owed_until_the_task_has_ended() -> None:
    state = fold({}, decide(want(instances=2), [], HOSTS, {}, 100.0), 100.0)
    a, b = sorted(state)
    state[a] = t.apply(state[a], t.TaskKillRequested(a, "surplus", 101.0))  # stored, never carried out
    d = decide(want(instances=1), state.values(), HOSTS, {}, 102.0)
    assert d.owed == (a,) and d.kills == () and d.launches == ()
    gone = decide({}, state.values(), HOSTS, {}, 103.0)  # the group deleted: b is an orphan, a still owed
    assert gone.owed == (a,) and [k.task_id for k in gone.kills] == [b]
    state[a] = t.apply(state[a], t.TaskStatusChanged(a, TaskState.KILLED, 104.0))
    assert decide(want(instances=1), state.values(), HOSTS, {}, 105.0).owed == ()


def test_an_owed_kill_is_sent_at_once_by_a_new_process_then_every_retry() -> None:
    assert kills.due(["a", "b"], {}, 100.0, 10.0) == ["a", "b"]  # after a restart: nothing sent yet
    sent = {"a": 95.0, "b": 85.0}
    assert kills.due(["a", "b"], sent, 100.0, 10.0) == ["b"]
    assert kills.due(["a", "b"], sent, 105.0, 10.0) == ["a", "b"]


def test_launch_limit_spans_groups_and_the_rest_waits() -> None:
    desired = {**want("a", 5), **want("b", 5)}
    d = decide(desired, [], HOSTS, {}, 100.0, launch_limit=7)
    assert len(d.launches) == 7 and d.failures == ()
    state = fold({}, d, 100.0)
    assert len(decide(desired, state.values(), HOSTS, {}, 101.0, seed=3).launches) == 3


def test_unplaceable_tasks_give_a_placement_failure_with_reasons() -> None:
    d = decide(want(instances=2, constraints=[["zone", "==", "mars"]]), [], HOSTS, {}, 100.0)
    assert d.launches == ()
    assert d.failures == (t.PlacementFailed("web", 2, {"constraint zone==mars": 4}, 4, 100.0),)
    assert d.events == d.failures


def test_launch_spec_carries_ports_health_and_host() -> None:
    desired = want(instances=1, ports=[{"name": "http"}], health_check={"protocol": "http"}, env={"A": "1"})
    (launch,) = decide(desired, [], HOSTS, {}, 100.0).launches
    assert launch.ports == {"http": 31000} and launch.env == {"A": "1"}
    assert launch.health_check is not None and launch.health_check.protocol == "http"
    assert launch.host_id in {h.host_id for h in HOSTS} and (launch.cpus, launch.mem) == (0.5, 64)


def test_existing_tasks_count_for_constraints() -> None:
    desired = want(instances=4, constraints=[["hostname", "UNIQUE"]])
    state = fold(
        {}, decide(want(instances=2, constraints=[["hostname", "UNIQUE"]]), [], HOSTS, {}, 100.0), 100.0
    )
    d = decide(desired, state.values(), HOSTS, {}, 101.0, seed=5)
    hosts = {x.hostname for x in fold(state, d, 101.0).values()}
    assert len(d.launches) == 2 and len(hosts) == 4


def test_property_converges_to_instances() -> None:
    for seed in range(150):
        rnd = random.Random(seed)
        groups = ["g1", "g2", "g3"]
        state: dict[str, t.Task] = {}
        now = 100.0
        for _ in range(6):
            desired = {
                g: Desired(spec(g), rnd.randint(1, 2), rnd.randint(0, 12))
                for g in groups
                if rnd.random() < 0.8
            }
            # chaos: some tasks die, go unhealthy or get stuck staging
            for tid, task in list(state.items()):
                if task.terminal:
                    continue
                roll = rnd.random()
                if roll < 0.1:
                    state[tid] = t.apply(
                        task, t.TaskStatusChanged(tid, rnd.choice([TaskState.FAILED, TaskState.LOST]), now)
                    )
                elif roll < 0.15:
                    state[tid] = t.apply(task, t.TaskHealthChanged(tid, False, 3, now))
            d = decide(desired, state.values(), HOSTS, {}, now, seed=rnd.randint(0, 2**31))
            state = fold(state, d, now)
            for g, w in desired.items():
                assert len(active(state, g)) == w.instances, (seed, g)
            orphans = [x for x in state.values() if x.group not in desired and not x.terminal]
            assert not orphans
            assert len({x.id for x in state.values()}) == len(state)
            now += 1.0


def test_property_surplus_kills_never_leave_more_than_instances() -> None:
    for seed in range(100):
        rnd = random.Random(seed)
        state: dict[str, t.Task] = {}
        d = decide(want(instances=rnd.randint(0, 20)), [], HOSTS, {}, 100.0, seed=seed)
        state = fold(state, d, 100.0, run=rnd.random() < 0.5)  # staging or running
        n = rnd.randint(0, 20)
        d = decide(want(instances=n), state.values(), HOSTS, {}, 101.0, seed=seed + 1)
        state = fold(state, d, 101.0, run=False)
        assert len(active(state)) <= n
        assert len([x for x in state.values() if x.active or (not x.terminal and not x.kill_reason)]) <= n
