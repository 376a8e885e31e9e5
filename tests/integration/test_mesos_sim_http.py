"""Protocol-level checks of the Mesos master simulator with raw HTTP: codes, RecordIO, stream ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.mesos_sim import MesosMasterSim, SimConfig
from tests.mesos_sim.client import records, start_driver, stop_driver, task_info

Json = dict[str, Any]


@pytest.fixture
async def sim() -> AsyncIterator[MesosMasterSim]:
    s = MesosMasterSim(agents=2)
    await s.start()
    yield s
    await s.stop()


def subscribe_body(fid: str | None = None, failover_timeout: float = 100.0) -> Json:
    info: Json = {"user": "bay", "name": "raw", "failover_timeout": failover_timeout}
    body: Json = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    if fid:
        info["id"] = {"value": fid}
        body["framework_id"] = {"value": fid}
    return body


async def test_version_stream_ids_and_status_codes(sim: MesosMasterSim) -> None:
    api = f"{sim.url}/api/v1/scheduler"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{sim.url}/version")).json()["version"] == "1.11.0"
        async with http.stream("POST", api, json=subscribe_body()) as resp:
            assert resp.status_code == 200
            assert resp.headers["transfer-encoding"] == "chunked"
            sid = resp.headers["mesos-stream-id"]
            events = records(resp.aiter_raw())
            first = await anext(events)
            assert first["type"] == "SUBSCRIBED"
            fid = first["subscribed"]["framework_id"]["value"]
            assert first["subscribed"]["heartbeat_interval_seconds"] == 15.0
            offers = await anext(events)
            assert offers["type"] == "OFFERS" and len(offers["offers"]["offers"]) == 2  # nested
            decline: Json = {
                "type": "DECLINE",
                "framework_id": {"value": fid},
                "decline": {"offer_ids": [offers["offers"]["offers"][0]["id"]]},
            }
            assert (await http.post(api, json=decline)).status_code == 400  # no stream id
            assert (await http.post(api, json=decline, headers={"Mesos-Stream-Id": "x"})).status_code == 400
            other = {**decline, "framework_id": {"value": "unknown"}}
            assert (await http.post(api, json=other, headers={"Mesos-Stream-Id": sid})).status_code == 403
            assert (await http.post(api, json=decline, headers={"Mesos-Stream-Id": sid})).status_code == 202
            assert (
                await http.post(api, content=b"{", headers={"Content-Type": "application/json"})
            ).status_code == 400
            resub = await http.post(api, json=subscribe_body(), headers={"Mesos-Stream-Id": sid})
            assert resub.status_code == 400
            sim.fail_over_master(no_leader_seconds=30)
            assert (await http.post(api, json=decline, headers={"Mesos-Stream-Id": sid})).status_code == 503


async def test_non_leader_redirects(sim: MesosMasterSim) -> None:
    old = sim.url
    sim.fail_over_master(no_leader_seconds=0.01)
    await sim.wait_until(lambda: sim.leader_address is not None)
    async with httpx.AsyncClient(timeout=5) as http:
        resp = await http.post(f"{old}/api/v1/scheduler", json=subscribe_body())
    assert resp.status_code == 307
    assert resp.headers["location"] == f"//{sim.leader_address}/api/v1/scheduler"


async def test_failover_timeout_kills_tasks_and_forgets_the_framework(sim: MesosMasterSim) -> None:
    api = f"{sim.url}/api/v1/scheduler"
    async with httpx.AsyncClient(timeout=5) as http:
        async with http.stream("POST", api, json=subscribe_body(failover_timeout=0.05)) as resp:
            sid = resp.headers["mesos-stream-id"]
            events = records(resp.aiter_raw())
            fid = (await anext(events))["subscribed"]["framework_id"]["value"]
            offer = (await anext(events))["offers"]["offers"][0]
            agent = offer["agent_id"]["value"]
            accept = {
                "type": "ACCEPT",
                "framework_id": {"value": fid},
                "accept": {
                    "offer_ids": [offer["id"]],
                    "operations": [
                        {"type": "LAUNCH", "launch": {"task_infos": [task_info("t.1", agent, cpus=1)]}}
                    ],
                },
            }
            assert (await http.post(api, json=accept, headers={"Mesos-Stream-Id": sid})).status_code == 202
            update = await anext(events)
            assert update["type"] == "UPDATE" and update["update"]["status"]["state"] == "TASK_STARTING"
        # the stream is closed: after the failover timeout the task is killed and the framework removed
        await sim.wait_until(lambda: fid in sim.removed_frameworks)
        assert sim.agents[agent].free.cpus == pytest.approx(8.0)
        async with http.stream("POST", api, json=subscribe_body(fid)) as resp:
            error = await anext(records(resp.aiter_raw()))
        assert error == {"type": "ERROR", "error": {"message": "Framework has been removed"}}


async def test_unacknowledged_updates_are_resent() -> None:
    sim = MesosMasterSim(agents=1, config=SimConfig(update_retry_seconds=0.05, send_starting=False))
    await sim.start()
    api = f"{sim.url}/api/v1/scheduler"
    try:
        async with (
            httpx.AsyncClient(timeout=5) as http,
            http.stream("POST", api, json=subscribe_body()) as resp,
        ):
            sid = resp.headers["mesos-stream-id"]
            events = records(resp.aiter_raw())
            fid = (await anext(events))["subscribed"]["framework_id"]["value"]
            offer = (await anext(events))["offers"]["offers"][0]
            launch = {"task_infos": [task_info("t.1", offer["agent_id"]["value"])]}
            accept = {
                "type": "ACCEPT",
                "framework_id": {"value": fid},
                "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": launch}]},
            }
            await http.post(api, json=accept, headers={"Mesos-Stream-Id": sid})
            updates: list[Json] = []
            while len(updates) < 2:
                ev = await asyncio.wait_for(anext(events), 5)
                if ev["type"] == "UPDATE":
                    updates.append(ev["update"]["status"])
            assert updates[0]["uuid"] == updates[1]["uuid"]  # same update, re-sent
            ack = {
                "type": "ACKNOWLEDGE",
                "framework_id": {"value": fid},
                "acknowledge": {
                    "agent_id": updates[0]["agent_id"],
                    "task_id": {"value": "t.1"},
                    "uuid": updates[0]["uuid"],
                },
            }
            assert (await http.post(api, json=ack, headers={"Mesos-Stream-Id": sid})).status_code == 202
            assert not sim.framework().pending
    finally:
        await sim.stop()


async def test_scale_250_agents_5000_tasks_with_pymesos() -> None:
    sim = MesosMasterSim(agents=250, config=SimConfig(running_delay=0.0, heartbeat_interval=15))
    await sim.start()
    driver, bridge = await start_driver(sim.address)
    try:
        offers: list[Json] = []
        while len(offers) < 250:
            offers += await bridge.next("offers")

        def launch_all() -> None:
            for i, offer in enumerate(offers):
                agent = offer["agent_id"]["value"]
                tasks = [task_info(f"s.{i}.{j}", agent, ports=[31000 + j]) for j in range(20)]
                driver.launchTasks(offer["id"], tasks, {"refuse_seconds": 60})

        await asyncio.to_thread(launch_all)
        # STARTING and RUNNING for each task, each acknowledged (a cheap predicate: it runs on every call)
        # how fast is the benchmark's business (`python -m bench mesos-scale`); here only that all arrive
        await sim.wait_until(lambda: sim.calls["ACKNOWLEDGE"] >= 10_000, timeout=90)
        assert len(sim.tasks_in_state("TASK_RUNNING")) == 5000 and not sim.framework().pending
    finally:
        await stop_driver(driver)
        await sim.stop()
