"""The scheduler process on the Mesos backend, against the master simulator over real HTTP (pymesos):
scale-up with a SIGKILL in the middle, a kill stored just before a SIGKILL, agent loss, a dropped
subscription, health, constraints."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from bay.v1 import task_pb2

from tests.integration.registry_harness import RunningRegistry, start_registry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, register_cluster, scale
from tests.integration.test_scheduler_kills import ended_by_kill, store_kill_as_the_scheduler_does
from tests.mesos_sim.master import MesosMasterSim, SimConfig, make_agents

SMALL = {"cpus": 0.1, "mem": 32}


@pytest_asyncio.fixture
async def registry(fresh_stream: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    reg = await start_registry(fresh_stream, tmp_path)
    yield reg
    await reg.stop()


@pytest_asyncio.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[MesosMasterSim]:
    agents = getattr(request, "param", 10)
    master = MesosMasterSim(make_agents(agents), SimConfig(health_delay=0.05))
    await master.start()
    yield master
    await master.stop()


@pytest_asyncio.fixture
async def sched(
    registry: RunningRegistry, sim: MesosMasterSim, fresh_stream: str, tmp_path: Path
) -> AsyncIterator[SchedulerProcess]:
    await register_cluster(registry, "sim", "mesos", sim.address)
    proc = SchedulerProcess(registry, fresh_stream, tmp_path, cluster="sim")
    await proc.start()
    yield proc
    await proc.stop()


def running_in_sim(sim: MesosMasterSim) -> dict[str, str]:
    """task id -> agent hostname of every task the master has RUNNING."""
    return {t.task_id: sim.agents[t.agent_id].spec.hostname for t in sim.tasks_in_state("TASK_RUNNING")}


async def framework_events(registry: RunningRegistry) -> list[str]:
    return [
        task_pb2.FrameworkRegistered.FromString(r.envelope.payload.value).framework_id
        async for r in registry.log.read(1, subject_filter="bay.ev.framework.sim")
    ]


async def test_tasks_run_on_agents_and_the_framework_id_is_stored(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="web", cluster="sim", cmd="serve", instances=12, resources=SMALL,
                       ports=[{"name": "http"}])  # fmt: skip
    await sched.until("web", lambda s: s.ready == 12)
    tasks = await sched.tasks("web")
    assert {t.id for t in tasks} == set(running_in_sim(sim))
    assert all(t.hostname.endswith(".sim") and t.host_labels["zone"].startswith("zone-") for t in tasks)
    # clients (DNS) reach a task at its agent's IP, from the offers' url (the simulator's: 127.0.0.1)
    assert {t.host_address for t in tasks} == {"127.0.0.1"}
    assert all(31000 <= t.ports["http"] <= 32000 for t in tasks)
    assert await framework_events(registry) == [sim.framework().framework_id]


async def test_sigkill_in_the_middle_of_a_scale_up_leaves_exactly_the_desired_count(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="big", cluster="sim", cmd="serve", instances=1, resources=SMALL)
    await sched.until("big", lambda s: s.ready == 1)
    await scale(registry, "big", 300)
    await sched.until("big", lambda s: s.staged + s.running >= 30)
    sched.sigkill()
    await sched.restart()
    await sched.until("big", lambda s: s.ready == 300 and s.staged == 0 and s.killing == 0, timeout=30)
    in_sim = running_in_sim(sim)
    assert len(in_sim) == 300
    assert {t.id for t in await sched.tasks("big")} == set(in_sim)  # none orphaned, none doubled
    assert len(sim.frameworks) == 1  # re-subscribed with the stored framework id
    assert len(set(await framework_events(registry))) == 1


async def test_a_kill_stored_just_before_a_sigkill_is_sent_to_mesos_after_the_restart(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="web", cluster="sim", cmd="serve", instances=2, resources=SMALL)
    await sched.until("web", lambda s: s.ready == 2)
    young, old = sorted(await sched.tasks("web"), key=lambda t: t.launched_at, reverse=True)
    sched.sigkill()
    await scale(registry, "web", 1)
    await store_kill_as_the_scheduler_does(registry, young.id, "surplus", cluster="sim")
    await sched.restart()
    await sched.until_tasks("web", ended_by_kill(young.id, "surplus"), timeout=20)
    await sched.until("web", lambda s: s.ready == 1 and s.killing == 0)
    assert set(running_in_sim(sim)) == {old.id}


async def test_a_lost_agent_has_its_tasks_replaced_elsewhere(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="web", cluster="sim", cmd="serve", instances=10, resources=SMALL)
    await sched.until("web", lambda s: s.ready == 10)
    by_host = Counter(running_in_sim(sim).values())
    victim_host = by_host.most_common(1)[0][0]
    victim = sim.agent_by_hostname(victim_host)
    doomed = {tid for tid, host in running_in_sim(sim).items() if host == victim_host}
    sim.lose_agent(victim.agent_id)
    tasks = await sched.until_tasks(
        "web",
        lambda ts: (
            all(ts[d].state in ("LOST", "UNREACHABLE", "GONE") for d in doomed)
            and len([t for t in ts.values() if t.ready]) == 10
        ),
    )
    assert all(t.hostname != victim_host for t in tasks.values() if t.ready)


async def test_a_dropped_subscription_resubscribes_with_the_same_framework_id(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="web", cluster="sim", cmd="serve", instances=5, resources=SMALL)
    await sched.until("web", lambda s: s.ready == 5)
    fid = sim.framework().framework_id
    subscribes = sim.calls["SUBSCRIBE"]
    reconciles = sim.calls["RECONCILE"]
    sim.drop_subscription()
    await sim.wait_until(
        lambda: sim.calls["SUBSCRIBE"] > subscribes and sim.calls["RECONCILE"] > reconciles, timeout=15
    )
    assert list(sim.frameworks) == [fid] and sim.framework().stream_id is not None
    await scale(registry, "web", 7)  # and it goes on scheduling
    await sched.until("web", lambda s: s.ready == 7)
    assert len(running_in_sim(sim)) == 7


async def test_a_task_mesos_reports_unhealthy_is_replaced(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="hc", cluster="sim", cmd="serve", instances=3, resources=SMALL,
        ports=[{"name": "http"}],
        health_check={"protocol": "http", "path": "/health", "grace_period_seconds": 0},
    )  # fmt: skip
    await sched.until("hc", lambda s: s.healthy == 3 and s.ready == 3)
    sick = next(iter(running_in_sim(sim)))
    info = sim.framework().tasks[sick].info
    assert info["health_check"]["type"] == "HTTP" and info["health_check"]["http"]["path"] == "/health"
    sim.set_health(sick, False)
    tasks = await sched.until_tasks(
        "hc", lambda ts: ts[sick].state == "KILLED" and len([t for t in ts.values() if t.ready]) == 3
    )
    assert tasks[sick].kill_reason == "unhealthy"


async def test_unique_hostname_spreads_over_ten_agents_and_the_eleventh_waits(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="uniq", cluster="sim", cmd="serve", instances=11, resources=SMALL,
        constraints=[{"field": "hostname", "op": "UNIQUE"}],
    )  # fmt: skip
    status = await sched.until(
        "uniq", lambda s: s.ready == 10 and s.pending.count == 1 and bool(s.pending.reasons)
    )
    assert len(set(running_in_sim(sim).values())) == 10
    assert "UNIQUE" in " ".join(status.pending.reasons) and "found no host" in status.pending.summary


async def test_max_per_zone_caps_each_zone(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="zoned", cluster="sim", cmd="serve", instances=8, resources=SMALL,
        constraints=[{"field": "zone", "op": "MAX_PER", "value": "2"}],
    )  # fmt: skip
    status = await sched.until(
        "zoned", lambda s: s.ready == 6 and s.pending.count == 2 and bool(s.pending.reasons)
    )
    zones = Counter(t.host_labels["zone"] for t in await sched.tasks("zoned"))
    assert sorted(zones.values()) == [2, 2, 2]  # 3 zones, at most 2 each
    assert any("MAX_PER" in reason for reason in status.pending.reasons)


async def test_a_label_no_agent_has_leaves_tasks_pending_with_the_reason(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="gpu", cluster="sim", cmd="serve", instances=2, resources=SMALL,
        constraints=[{"field": "gpu", "op": "==", "value": "a100"}],
    )  # fmt: skip
    status = await sched.until("gpu", lambda s: s.pending.count == 2 and bool(s.pending.reasons))
    assert dict(status.pending.reasons) == {"constraint gpu==a100": status.pending.hosts}
    assert status.pending.hosts > 0 and not running_in_sim(sim)


async def test_offers_are_suppressed_when_nothing_waits_and_revived_when_something_does(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="quiet", cluster="sim", cmd="serve", instances=3, resources=SMALL)
    await sched.until("quiet", lambda s: s.ready == 3)
    await sim.wait_until(lambda: sim.framework().suppressed, timeout=10)
    revives = sim.calls["REVIVE"]
    await scale(registry, "quiet", 6)
    await sim.wait_until(lambda: sim.calls["REVIVE"] > revives, timeout=10)
    await sched.until("quiet", lambda s: s.ready == 6)
    await sim.wait_until(lambda: sim.framework().suppressed, timeout=10)
    assert sim.calls["DECLINE"] > 0  # offers it did not use went back with a filter
