"""Parts of the Mesos backend that need no master: the task table, the inbox, agent addresses, offers
and launches while there is no subscription (every call is refused before any I/O)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from typing import Any

from services.scheduler.backends.mesos.agents import Agents
from services.scheduler.backends.mesos.calls import MasterCalls
from services.scheduler.backends.mesos.config import MesosBackendConfig
from services.scheduler.backends.mesos.inbox import Inbox, Item
from services.scheduler.backends.mesos.jobs import Jobs
from services.scheduler.backends.mesos.launches import Launcher
from services.scheduler.backends.mesos.offers import Offers
from services.scheduler.backends.mesos.tasks import TaskTable
from services.scheduler.ports import HealthCheckSpec, LaunchSpec

Json = dict[str, Any]
CONFIG = MesosBackendConfig(master="127.0.0.1:1", cluster="test")


def test_the_task_table_keeps_live_tasks_and_a_bounded_tail_of_ended_ones() -> None:
    table = TaskTable(ended_kept=2)
    table.launched("web.1", "S1")
    table.launched("web.2", "S1")
    table.reported("web.3", "S2", terminal=False)  # re-adopted: first heard of in an update
    table.reported("web.4", "", terminal=False)  # unknown to the master as well: not kept
    assert table.live() == ["web.1", "web.2", "web.3"] and table.agent_of("web.4") is None
    assert table.live_on("S1") == ["web.1", "web.2"]
    assert table.live_by_agent() == {"S1": {"web.1", "web.2"}, "S2": {"web.3"}}

    table.reported("web.1", "", terminal=True)  # no agent in the status: the known one stays
    assert table.ended("web.1") and table.agent_of("web.1") == "S1" and table.live_on("S1") == ["web.2"]
    table.reported("web.2", "S3", terminal=False)  # moved: its updates name another agent
    assert table.agent_of("web.2") == "S3"
    table.reported("web.2", "S3", terminal=True)
    table.reported("web.1", "S1", terminal=True)  # a repeated end does not count twice
    table.reported("web.3", "S2", terminal=True)  # a third ended task: the oldest is forgotten
    assert table.agent_of("web.1") is None and table.agent_of("web.2") == "S3" and table.live() == []

    table.reported("web.3", "S2", terminal=False)  # an agent that came back: alive again
    assert not table.ended("web.3") and table.live_on("S2") == ["web.3"]


async def test_the_inbox_hands_what_threads_posted_to_the_loop_in_order_and_in_batches() -> None:
    batches: list[list[Item]] = []
    done = asyncio.Event()

    def handle(items: list[Item]) -> None:
        batches.append(items)
        if sum(len(b) for b in batches) == 1000:
            done.set()

    inbox = Inbox(handle)
    inbox.open(asyncio.get_running_loop())

    def post_all() -> None:
        for i in range(1000):
            inbox.post((1, "update", i))

    thread = threading.Thread(target=post_all)
    thread.start()
    thread.join()  # the loop is busy meanwhile (here: blocked), as it is while it handles a batch
    await asyncio.wait_for(done.wait(), 5.0)
    assert [payload for batch in batches for _, _, payload in batch] == list(range(1000))
    assert len(batches) == 1  # one wake-up for all of them


def test_host_address_is_the_agents_ip_when_its_url_gives_one() -> None:
    agents = Agents(1.0, master=lambda: "127.0.0.1:5050")
    agents.learn("S1", "agent-1.sim", "10.0.0.5:5051")
    agents.learn("S2", "agent-2.sim", "agent-2.example:5051")
    agents.learn("S3", "agent-3.sim", "[fd00::3]:5051")
    agents.learn("S4", "agent-4.sim", None)
    assert agents.host_address("S1", "agent-1.sim") == "10.0.0.5"
    assert agents.host_address("S2", "agent-2.sim") == "agent-2.sim"  # a name, not an address
    assert agents.host_address("S3", "agent-3.sim") == "fd00::3"
    assert agents.host_address("S4", "agent-4.sim") == "agent-4.sim"
    assert agents.host_address("S9", "somewhere") == "somewhere"


def offer(offer_id: str, agent_id: str, cpus: float = 4.0) -> Json:
    return {
        "id": {"value": offer_id},
        "agent_id": {"value": agent_id},
        "hostname": f"{agent_id.lower()}.sim",
        "url": {"address": {"ip": "10.0.0.1", "port": 5051}},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024.0}, "role": "*"},
        ],
    }


async def test_offers_are_held_until_used_rescinded_or_void_and_capacity_is_told_once_a_batch() -> None:
    told: list[int] = []
    agents = Agents(1.0, master=lambda: "127.0.0.1:5050")
    offers = Offers(CONFIG, MasterCalls(), agents, Jobs(), on_capacity=lambda: told.append(1))
    offers.add([offer("O1", "S1"), offer("O2", "S2"), {"id": {"value": "bad"}}])
    offers.add([offer("O3", "S2")])
    offers.batch_done()
    offers.batch_done()  # nothing new since
    assert told == [1] and [h.offer_id for h in offers.hosts()] == ["O1", "O2", "O3"]
    assert agents.host_address("S1", "") == "10.0.0.1"  # offers say where their agents are

    held = offers.take("O1")
    assert held is not None and held.host.cpus == 4.0 and offers.take("O1") is None  # good once
    offers.rescind("O2")
    offers.agent_lost("S2")
    assert offers.hosts() == []
    offers.add([offer("O4", "S1")])
    offers.void()  # in the same batch: the subscription was lost
    offers.batch_done()
    assert told == [1, 1] and offers.hosts() == []

    await offers.want(False)  # no subscription: the decline and the SUPPRESS are not sent
    offers.add([offer("O5", "S1")])  # on its way when we suppressed: declined, not capacity
    offers.batch_done()
    assert told == [1, 1] and offers.hosts() == []


def spec(task_id: str, offer_id: str | None, **changes: Any) -> LaunchSpec:
    base = LaunchSpec(
        task_id=task_id, group="web", group_version=1, host_id="S1", offer_id=offer_id, cmd="sleep 9",
        image=None, args=(), env={}, cpus=0.1, mem=32.0, disk=0.0, ports={},
    )  # fmt: skip
    return replace(base, **changes)


async def test_every_launched_task_gets_a_status_even_when_the_master_never_hears_of_it() -> None:
    reported: list[Json] = []
    reconciled: list[list[str]] = []

    async def reconcile(task_ids: list[str]) -> None:
        reconciled.append(task_ids)

    calls, agents, tasks = MasterCalls(), Agents(1.0, master=lambda: ""), TaskTable()
    offers = Offers(CONFIG, calls, agents, Jobs())
    offers.add([offer("O1", "S1")])
    launcher = Launcher(CONFIG, calls, offers, agents, tasks, reported.append, reconcile, clock=lambda: 7.0)
    wrong = spec("web.bad", "O1", health_check=HealthCheckSpec(protocol="http", port_name="nope"))
    await launcher.launch([spec("web.none", None), wrong, spec("web.ok", "O1")])

    by_task = {r["task_id"]["value"]: r for r in reported}
    assert set(by_task) == {"web.none", "web.bad", "web.ok"} and reconciled == []
    assert (by_task["web.none"]["state"], by_task["web.none"]["reason"]) == (
        "TASK_LOST",
        "REASON_INVALID_OFFERS",
    )
    assert (by_task["web.bad"]["state"], by_task["web.bad"]["reason"]) == (
        "TASK_ERROR",
        "REASON_TASK_INVALID",
    )
    ok = by_task["web.ok"]  # its ACCEPT could not be sent (no subscription): certainly not launched
    assert (ok["state"], ok["reason"], ok["agent_id"]) == (
        "TASK_LOST",
        "REASON_INVALID_OFFERS",
        {"value": "S1"},
    )
    assert "not subscribed" in ok["message"] and ok["timestamp"] == 7.0 and "uuid" not in ok
    assert tasks.live() == ["web.ok"] and offers.hosts() == []  # the table knows it until its status
