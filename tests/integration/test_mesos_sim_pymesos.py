"""The Mesos master simulator driven by the real pymesos driver over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.mesos_sim import MesosMasterSim, SimConfig
from tests.mesos_sim.client import Bridge, scalar, start_driver, stop_driver, task_info

Json = dict[str, Any]


@pytest.fixture
async def sim() -> AsyncIterator[MesosMasterSim]:
    s = MesosMasterSim(agents=3, config=SimConfig(running_delay=0.01))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def mesos(sim: MesosMasterSim) -> AsyncIterator[tuple[Any, Bridge]]:
    driver, bridge = await start_driver(sim.address)
    yield driver, bridge
    await stop_driver(driver)


async def first_offers(bridge: Bridge, n: int = 3) -> list[Json]:
    offers: list[Json] = []
    while len(offers) < n:
        offers += await bridge.next("offers")
    return offers


async def launch_running(driver: Any, bridge: Bridge, offer: Json, tasks: list[Json]) -> None:
    await asyncio.to_thread(driver.launchTasks, offer["id"], tasks)
    ids = {t["task_id"]["value"] for t in tasks}
    running: set[str] = set()
    while running != ids:
        st = await bridge.next("update", lambda s: s["state"] == "TASK_RUNNING")
        running.add(st["task_id"]["value"])


async def test_subscribe_gets_offers_from_every_agent(sim: MesosMasterSim, mesos: tuple[Any, Bridge]) -> None:
    _, bridge = mesos
    fid = await bridge.next("registered")
    assert fid["value"] == sim.framework().framework_id
    offers = await first_offers(bridge)
    assert {o["hostname"] for o in offers} == {"agent-000.sim", "agent-001.sim", "agent-002.sim"}
    offer = offers[0]
    assert scalar(offer, "cpus") == 8.0
    ports = next(r for r in offer["resources"] if r["name"] == "ports")
    assert ports["ranges"]["range"] == [{"begin": 31000, "end": 32000}]
    attrs = {a["name"]: a for a in offer["attributes"]}
    assert attrs["zone"]["type"] == "TEXT" and attrs["gen"]["type"] == "SCALAR"
    # pymesos adds these to the framework info
    assert sim.framework().failover_timeout == 100
    assert {"type": "GPU_RESOURCES"} in sim.framework().info["capabilities"]


async def test_launch_goes_running_with_acks_health_and_statistics(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge]
) -> None:
    driver, bridge = mesos
    offer = (await first_offers(bridge))[0]
    agent = offer["agent_id"]["value"]
    tasks = [task_info("web.1", agent, ports=[31005], health=True), task_info("web.2", agent, cpus=0.5)]
    await asyncio.to_thread(driver.launchTasks, offer["id"], tasks)
    starting = await bridge.next("update", lambda s: s["state"] == "TASK_STARTING")
    assert (
        starting["uuid"]
        and starting["agent_id"]["value"] == agent
        and starting["source"] == "SOURCE_EXECUTOR"
    )
    healthy = await bridge.next("update", lambda s: "healthy" in s)
    assert healthy["task_id"]["value"] == "web.1" and healthy["healthy"] is True
    await sim.wait_until(lambda: len(sim.tasks_in_state("TASK_RUNNING")) == 2 and not sim.framework().pending)
    assert sim.calls["ACKNOWLEDGE"] >= 5  # 2 x STARTING, 2 x RUNNING, 1 health update
    async with httpx.AsyncClient() as http:
        stats = (await http.get(f"{sim.agent_url(agent)}/monitor/statistics")).json()
    assert {s["executor_id"] for s in stats} == {"web.1", "web.2"}
    web2 = next(s for s in stats if s["executor_id"] == "web.2")["statistics"]
    assert web2["cpus_limit"] == pytest.approx(0.6) and web2["mem_limit_bytes"] == 64 * 1024 * 1024
    assert web2["mem_rss_bytes"] > 0 and web2["timestamp"] > 0
    # the rest of the agent comes back in a later offer (once the accept's default filter allows it)
    await asyncio.to_thread(driver.reviveOffers)
    again = await bridge.next("offers", lambda os: any(o["agent_id"]["value"] == agent for o in os))
    rest = next(o for o in again if o["agent_id"]["value"] == agent)
    assert scalar(rest, "cpus") == pytest.approx(8.0 - 0.6)
    rest_ports = next(r for r in rest["resources"] if r["name"] == "ports")["ranges"]["range"]
    assert rest_ports == [{"begin": 31000, "end": 31004}, {"begin": 31006, "end": 32000}]


async def test_invalid_launches_are_lost_without_uuid(sim: MesosMasterSim, mesos: tuple[Any, Bridge]) -> None:
    driver, bridge = mesos
    o1, o2, _ = await first_offers(bridge)
    a1, a2 = o1["agent_id"]["value"], o2["agent_id"]["value"]
    await asyncio.to_thread(driver.launchTasks, o1["id"], [task_info("big", a1, cpus=64.0)])
    lost = await bridge.next("update", lambda s: s["task_id"]["value"] == "big")
    assert lost["state"] == "TASK_LOST" and lost["reason"] == "REASON_INVALID_OFFERS" and "uuid" not in lost
    # the offer was used by that accept: good once
    await asyncio.to_thread(driver.launchTasks, o1["id"], [task_info("again", a1)])
    lost = await bridge.next("update", lambda s: s["task_id"]["value"] == "again")
    assert lost["state"] == "TASK_LOST" and lost["reason"] == "REASON_INVALID_OFFERS" and "uuid" not in lost
    await asyncio.to_thread(driver.launchTasks, o2["id"], [task_info("port", a2, ports=[80])])
    lost = await bridge.next("update", lambda s: s["task_id"]["value"] == "port")
    assert lost["state"] == "TASK_LOST" and lost["reason"] == "REASON_INVALID_OFFERS"
    assert not sim.framework().tasks


async def test_declined_agent_not_reoffered_before_refuse_seconds(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge]
) -> None:
    driver, bridge = mesos
    o1, o2, o3 = await first_offers(bridge)
    await asyncio.to_thread(driver.declineOffer, o1["id"], {"refuse_seconds": 60})
    await asyncio.to_thread(driver.declineOffer, [o2["id"], o3["id"]], {"refuse_seconds": 0.01})
    seen: set[str] = set()
    for _ in range(3):  # three more rounds of offers for the other two agents
        batch = await bridge.next("offers")
        seen |= {o["agent_id"]["value"] for o in batch}
        await asyncio.to_thread(driver.declineOffer, [o["id"] for o in batch], {"refuse_seconds": 0.01})
    assert o1["agent_id"]["value"] not in seen
    await asyncio.to_thread(driver.reviveOffers)
    await bridge.next("offers", lambda os: any(o["agent_id"] == o1["agent_id"] for o in os))


async def test_kill_and_resources_return(sim: MesosMasterSim, mesos: tuple[Any, Bridge]) -> None:
    driver, bridge = mesos
    offer = (await first_offers(bridge))[0]
    agent = offer["agent_id"]["value"]
    await launch_running(driver, bridge, offer, [task_info("k.1", agent, cpus=2.0)])
    assert sim.agents[agent].free.cpus == pytest.approx(6.0)
    await asyncio.to_thread(driver.killTask, {"value": "k.1"})
    killed = await bridge.next(
        "update", lambda s: s["task_id"]["value"] == "k.1" and s["state"] == "TASK_KILLED"
    )
    assert killed["uuid"]
    await sim.wait_until(lambda: "k.1" not in sim.framework().tasks)  # acknowledged, forgotten
    assert sim.agents[agent].free.cpus == pytest.approx(8.0)


async def test_reconcile_empty_means_all_and_unknown_is_lost(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge]
) -> None:
    driver, bridge = mesos
    offer = (await first_offers(bridge))[0]
    agent = offer["agent_id"]["value"]
    await launch_running(driver, bridge, offer, [task_info("r.1", agent), task_info("r.2", agent)])
    await asyncio.to_thread(driver.reconcileTasks, [])
    got: dict[str, Json] = {}
    while len(got) < 2:
        st = await bridge.next("update", lambda s: s.get("reason") == "REASON_RECONCILIATION")
        got[st["task_id"]["value"]] = st
    assert {k: v["state"] for k, v in got.items()} == {"r.1": "TASK_RUNNING", "r.2": "TASK_RUNNING"}
    assert all("uuid" not in v for v in got.values())
    await asyncio.to_thread(driver.reconcileTasks, [{"task_id": {"value": "nope"}}])
    st = await bridge.next("update", lambda s: s["task_id"]["value"] == "nope")
    assert st["state"] == "TASK_LOST" and st["reason"] == "REASON_RECONCILIATION"


async def test_task_failure_and_agent_loss(sim: MesosMasterSim, mesos: tuple[Any, Bridge]) -> None:
    driver, bridge = mesos
    offer = (await first_offers(bridge))[0]
    agent = offer["agent_id"]["value"]
    await launch_running(driver, bridge, offer, [task_info("f.1", agent), task_info("f.2", agent)])
    sim.fail_task("f.1")
    failed = await bridge.next("update", lambda s: s["task_id"]["value"] == "f.1")
    assert failed["state"] == "TASK_FAILED" and failed["uuid"]
    sim.lose_agent(agent)
    lost = await bridge.next("update", lambda s: s["task_id"]["value"] == "f.2")
    assert lost["state"] == "TASK_LOST" and lost["reason"] == "REASON_AGENT_REMOVED"
    assert (await bridge.next("agent_lost"))["value"] == agent
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{sim.agent_url(agent)}/monitor/statistics")).status_code == 503


async def test_dropped_subscription_resubscribes_and_keeps_tasks(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge]
) -> None:
    driver, bridge = mesos
    fid = (await bridge.next("registered"))["value"]
    offer = (await first_offers(bridge))[0]
    await launch_running(driver, bridge, offer, [task_info("d.1", offer["agent_id"]["value"])])
    # pymesos acks from its IO thread and dies on a 403; let in-flight updates be acknowledged first
    await sim.wait_until(lambda: not sim.framework().pending)
    sim.drop_subscription()
    await bridge.next("disconnected")
    await bridge.next("reregistered")
    assert list(sim.frameworks) == [fid] and sim.framework().stream_id
    await asyncio.to_thread(driver.reconcileTasks, [{"task_id": {"value": "d.1"}}])
    st = await bridge.next("update", lambda s: s.get("reason") == "REASON_RECONCILIATION")
    assert st["state"] == "TASK_RUNNING"


async def test_master_failover_redirects_to_the_new_leader(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge]
) -> None:
    driver, bridge = mesos
    await bridge.next("registered")
    old = sim.address
    sim.fail_over_master(no_leader_seconds=0.05)
    await bridge.next("reregistered", timeout=10)
    assert sim.leader_address != old and sim.framework().stream_id
    assert driver.master == sim.leader_address
