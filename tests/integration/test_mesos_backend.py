"""The Mesos backend through pymesos against the master simulator: offers, launches, acknowledgements,
filters, suppression, lost agents, reconnection, failover, health, usage, logs and start-up failures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from libs.errors import Unavailable
from services.scheduler.backends.mesos import MesosBackend, MesosBackendConfig
from services.scheduler.ports import HealthCheckSpec, Host, LaunchSpec, StatusSink, TaskState, TaskStatus
from tests.contract.test_backend_contract import DEADLINE, StatusRecorder, hosts_with, launch_spec
from tests.mesos_sim import MesosMasterSim, SimConfig
from tests.poll import poll_until

Json = dict[str, Any]


@dataclass
class Framework:
    """One backend with its sink and what it reported through its callbacks."""

    backend: MesosBackend
    sink: StatusRecorder
    ids: list[str] = field(default_factory=list)
    capacity_calls: int = 0

    async def launch_on(self, host: Host, *specs: LaunchSpec) -> None:
        await self.backend.launch([replace(s, host_id=host.host_id, offer_id=host.offer_id) for s in specs])

    async def running(self, *task_ids: str, after: int = 0) -> list[TaskStatus]:
        return [await self.sink.wait_for(t, TaskState.RUNNING, after=after) for t in task_ids]

    async def reconciled(self, task_id: str, state: TaskState, after: int) -> TaskStatus:
        """The first answer to a reconciliation about ``task_id`` from index ``after`` (a re-sent
        unacknowledged update may come first; it is skipped)."""
        while True:
            found = await self.sink.wait_for(task_id, state, after=after)
            if found.reason == "REASON_RECONCILIATION":
                return found
            after = self.sink.statuses.index(found, after) + 1


async def start_framework(
    sim: MesosMasterSim, through: Callable[[StatusRecorder], StatusSink] | None = None, **config: Any
) -> Framework:
    """A started backend; its sink is a StatusRecorder, or ``through(recorder)`` to look inside it."""
    holder: list[Framework] = []

    async def remember(framework_id: str) -> None:
        holder[0].ids.append(framework_id)

    def offered() -> None:
        holder[0].capacity_calls += 1

    settings: dict[str, Any] = {"master": sim.url, "cluster": "test", **config}
    backend = MesosBackend(MesosBackendConfig(**settings), on_framework_id=remember, on_capacity=offered)
    fw = Framework(backend, StatusRecorder())
    holder.append(fw)
    await backend.start(through(fw.sink) if through else fw.sink)
    return fw


@pytest.fixture
async def sim() -> AsyncIterator[MesosMasterSim]:
    s = MesosMasterSim(agents=3, config=SimConfig(update_retry_seconds=0.2))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def mesos(sim: MesosMasterSim) -> AsyncIterator[Framework]:
    fw = await start_framework(sim)
    yield fw
    await fw.backend.stop()


async def all_hosts(fw: Framework, n: int = 3) -> list[Host]:
    """Capacity once every one of ``n`` agents has an offer out."""

    async def offered() -> list[Host]:
        hosts = await fw.backend.capacity()
        return hosts if len(hosts) >= n else []

    return sorted(await poll_until(offered, f"offers from {n} agents", DEADLINE), key=lambda h: h.hostname)


async def until(condition: Callable[[], bool], what: str) -> None:
    await poll_until(condition, what, DEADLINE)


async def test_offers_are_hosts_and_one_accept_launches_a_batch(
    sim: MesosMasterSim, mesos: Framework
) -> None:
    hosts = await all_hosts(mesos)
    assert mesos.ids == [sim.framework().framework_id] and mesos.capacity_calls >= 1
    assert sim.framework().info["name"] == "bay-test" and sim.framework().failover_timeout == 7 * 24 * 3600
    first = hosts[0]
    assert first.hostname == "agent-000.sim" and first.host_id in sim.agents and first.offer_id
    assert dict(first.labels) == {"zone": "zone-0", "rack": "rack-0", "gen": "2"}
    assert (first.cpus, first.mem, first.disk) == (8.0, 16384.0, 65536.0)
    assert [(r.begin, r.end) for r in first.ports] == [(31000, 32000)]

    web = launch_spec("web.1", "serve --port $PORT0", ports={"http": 31005}, env={"MODE": "prod"})
    img = launch_spec("img.1", None, image="registry.local/img:7", ports={"api": 31010, "admin": 31011})
    img = replace(img, args=("--verbose",), labels={"team": "feed"})
    await mesos.launch_on(first, web, img)
    running = await mesos.running("web.1", "img.1")
    assert all(s.hostname == "agent-000.sim" and s.host_id == first.host_id for s in running)
    assert sim.calls["ACCEPT"] == 1
    assert first.offer_id not in {h.offer_id for h in await mesos.backend.capacity()}

    web_info = sim.framework().tasks["web.1"].info
    env = {v["name"]: v["value"] for v in web_info["command"]["environment"]["variables"]}
    assert web_info["command"]["shell"] is True and web_info["command"]["value"] == "serve --port $PORT0"
    assert env["PORT0"] == env["PORT_HTTP"] == env["PORT"] == "31005"
    assert env["HOST"] == "agent-000.sim" and env["MODE"] == "prod" and env["BAY_TASK_ID"] == "web.1"
    resources = {r["name"]: r for r in web_info["resources"]}
    assert resources["cpus"]["scalar"]["value"] == 0.1 and resources["mem"]["scalar"]["value"] == 32.0
    assert resources["ports"]["ranges"]["range"] == [{"begin": 31005, "end": 31005}]
    assert "container" not in web_info

    img_info = sim.framework().tasks["img.1"].info
    docker = img_info["container"]["docker"]
    assert img_info["container"]["type"] == "DOCKER" and docker["image"] == "registry.local/img:7"
    assert docker["network"] == "BRIDGE"
    assert {(m["host_port"], m["container_port"]) for m in docker["port_mappings"]} == {
        (31010, 31010),
        (31011, 31011),
    }
    assert img_info["command"]["shell"] is False and img_info["command"]["arguments"] == ["--verbose"]
    labels = {x["key"]: x["value"] for x in img_info["labels"]["labels"]}
    assert labels == {"team": "feed", "bay_group": "img", "bay_group_version": "1"}
    ports = next(r for r in img_info["resources"] if r["name"] == "ports")
    assert ports["ranges"]["range"] == [{"begin": 31010, "end": 31011}]


async def test_bad_specs_and_used_offers_fail_through_the_sink(sim: MesosMasterSim, mesos: Framework) -> None:
    host = (await all_hosts(mesos))[0]
    bad_check = HealthCheckSpec(protocol="http", port_name="nope")
    broken = replace(launch_spec("web.broken", "sleep 60"), health_check=bad_check)
    await mesos.launch_on(host, broken, launch_spec("web.fine", "sleep 60"))
    error = await mesos.sink.wait_for("web.broken", *list(TaskState))
    assert (
        error.state is TaskState.ERROR and error.reason == "REASON_TASK_INVALID" and "nope" in error.message
    )
    await mesos.running("web.fine")
    # the offer was used: good once, the master says so
    await mesos.launch_on(host, launch_spec("web.late", "sleep 60"))
    late = await mesos.sink.wait_for("web.late", *list(TaskState))
    assert late.state is TaskState.LOST and late.reason == "REASON_INVALID_OFFERS"
    # more than the offer holds
    other = (await hosts_with(mesos.backend, 8.0))[0]
    await mesos.launch_on(other, launch_spec("web.huge", "sleep 60", cpus=64.0))
    huge = await mesos.sink.wait_for("web.huge", *list(TaskState))
    assert huge.state is TaskState.LOST and huge.reason == "REASON_INVALID_OFFERS"


async def test_updates_are_acknowledged_only_after_the_sink_returned(sim: MesosMasterSim) -> None:
    seen_pending: list[str] = []

    def looking(recorder: StatusRecorder) -> StatusSink:
        async def sink(status: TaskStatus) -> None:
            if status.task_id == "web.ack" and status.state is TaskState.RUNNING:
                # while the sink has it, the master still waits for its acknowledgement
                seen_pending.append(sim.framework().pending["web.ack"][0]["state"])
            await recorder(status)

        return sink

    fw = await start_framework(sim, through=looking)
    try:
        host = (await all_hosts(fw))[0]
        await fw.launch_on(host, launch_spec("web.ack", "sleep 60"))
        await fw.running("web.ack")
        assert seen_pending == ["TASK_RUNNING"]
        await sim.wait_until(lambda: "web.ack" not in sim.framework().pending)  # acknowledged after
    finally:
        await fw.backend.stop()


async def test_an_update_the_sink_refused_is_resent_and_taken_later(sim: MesosMasterSim) -> None:
    failures: list[TaskStatus] = []
    pending_then: list[str] = []

    def flaky(recorder: StatusRecorder) -> StatusSink:
        async def sink(status: TaskStatus) -> None:
            if status.state is TaskState.RUNNING and not failures:
                failures.append(status)
                pending_then.append(sim.framework().pending[status.task_id][0]["state"])
                raise ConnectionError("event log unavailable")
            await recorder(status)

        return sink

    fw = await start_framework(sim, through=flaky)
    recorder = fw.sink
    try:
        host = (await all_hosts(fw))[0]
        await fw.launch_on(host, launch_spec("web.retry", "sleep 60"))
        again = await recorder.wait_for("web.retry", TaskState.RUNNING)  # re-sent by the master
        assert pending_then == ["TASK_RUNNING"]  # the refused update was not acknowledged
        assert again.timestamp == failures[0].timestamp  # the very same update
        await sim.wait_until(lambda: "web.retry" not in sim.framework().pending)
    finally:
        await fw.backend.stop()


async def test_declined_offers_stay_away_for_their_filter(sim: MesosMasterSim, mesos: Framework) -> None:
    a, b, c = await all_hosts(mesos)
    assert a.offer_id and b.offer_id and c.offer_id
    await mesos.backend.decline([a.offer_id], 60.0)
    await mesos.backend.decline([b.offer_id, c.offer_id], 0.01)
    assert a.offer_id not in {h.offer_id for h in await mesos.backend.capacity()}
    again = await all_hosts(mesos, 2)
    assert {h.host_id for h in again} == {b.host_id, c.host_id}
    assert sim.calls["DECLINE"] == 2
    assert sim.framework().refused_until[a.host_id] > sim.framework().refused_until[b.host_id] + 50


async def test_a_rescinded_offer_leaves_capacity(sim: MesosMasterSim, mesos: Framework) -> None:
    first = (await all_hosts(mesos))[0]
    assert first.offer_id
    calls = mesos.capacity_calls
    sim.rescind_offer(first.offer_id)
    await until(
        lambda: first.offer_id not in sim.offers and mesos.capacity_calls > calls,
        "the agent was not offered again",
    )
    held = {h.offer_id for h in await mesos.backend.capacity()}
    assert first.offer_id not in held and first.host_id in {h.host_id for h in await mesos.backend.capacity()}


async def test_suppress_when_idle_and_revive_when_wanted(sim: MesosMasterSim, mesos: Framework) -> None:
    await all_hosts(mesos)
    await mesos.backend.want_offers(True)
    assert sim.calls["REVIVE"] == 0  # no change, no call
    await mesos.backend.want_offers(False)
    await mesos.backend.want_offers(False)
    assert sim.calls["SUPPRESS"] == 1 and sim.framework().suppressed
    assert await mesos.backend.capacity() == [] and not sim.offers  # held offers were declined
    await mesos.backend.want_offers(True)
    assert sim.calls["REVIVE"] == 1 and not sim.framework().suppressed
    await all_hosts(mesos)


async def test_tasks_of_a_lost_agent_end_lost(sim: MesosMasterSim, mesos: Framework) -> None:
    host = (await all_hosts(mesos))[0]
    await mesos.launch_on(host, launch_spec("web.a", "sleep 60"), launch_spec("web.b", "sleep 60"))
    await mesos.running("web.a", "web.b")
    mark = len(mesos.sink.statuses)
    sim.lose_agent(host.host_id)
    for task_id in ("web.a", "web.b"):
        lost = await mesos.sink.wait_for(task_id, *[s for s in TaskState if s.terminal], after=mark)
        assert lost.state is TaskState.LOST and lost.host_id == host.host_id
    assert host.host_id not in {h.host_id for h in await mesos.backend.capacity()}


async def test_a_dropped_subscription_resubscribes_and_reconciles(
    sim: MesosMasterSim, mesos: Framework
) -> None:
    host = (await all_hosts(mesos))[0]
    await mesos.launch_on(host, launch_spec("web.keep", "sleep 60"))
    await mesos.running("web.keep")
    fid = sim.framework().framework_id
    mark = len(mesos.sink.statuses)
    sim.drop_subscription()
    again = await mesos.reconciled("web.keep", TaskState.RUNNING, after=mark)
    assert again.hostname == host.hostname
    assert list(sim.frameworks) == [fid] and sim.calls["SUBSCRIBE"] == 2
    assert mesos.ids == [fid]  # the same framework: nothing new to store
    await all_hosts(mesos)  # offers flow again


async def test_a_new_backend_with_the_stored_framework_id_keeps_the_tasks(sim: MesosMasterSim) -> None:
    first = await start_framework(sim)
    host = (await all_hosts(first))[0]
    await first.launch_on(host, launch_spec("web.x", "sleep 60"), launch_spec("web.y", "sleep 60"))
    await first.running("web.x", "web.y")
    await first.backend.stop()
    fid = first.ids[0]
    await sim.wait_until(lambda: sim.framework().stream_id is None)
    assert len(sim.tasks_in_state("TASK_RUNNING")) == 2  # stopping is not a teardown

    second = await start_framework(sim, framework_id=fid)
    try:
        assert second.ids == [] and list(sim.frameworks) == [fid]
        for task_id in ("web.x", "web.y"):
            st = await second.reconciled(task_id, TaskState.RUNNING, after=0)
            assert st.hostname == "agent-000.sim"
        await second.backend.kill("web.x", grace_seconds=1.0)
        await second.sink.wait_for("web.x", TaskState.KILLED)
        assert sim.calls["TEARDOWN"] == 0
    finally:
        await second.backend.stop()


async def test_master_failover_follows_the_new_leader(sim: MesosMasterSim, mesos: Framework) -> None:
    host = (await all_hosts(mesos))[0]
    await mesos.launch_on(host, launch_spec("web.f", "sleep 60"))
    await mesos.running("web.f")
    old = sim.leader_address
    mark = len(mesos.sink.statuses)
    sim.fail_over_master(no_leader_seconds=0.2)
    await mesos.backend.kill("web.f", grace_seconds=1.0)  # while there is no leader: sent once back
    killed = await mesos.sink.wait_for("web.f", TaskState.KILLED, after=mark)
    assert killed.host_id == host.host_id and sim.leader_address != old
    fresh = (await hosts_with(mesos.backend, 1.0))[0]
    await mesos.launch_on(fresh, launch_spec("web.g", "sleep 60"))
    await mesos.running("web.g")
    assert mesos.ids == [sim.framework().framework_id]


async def test_health_checks_go_in_the_task_and_results_reach_the_sink(
    sim: MesosMasterSim, mesos: Framework
) -> None:
    host = (await all_hosts(mesos))[0]
    check = HealthCheckSpec(protocol="http", path="/health", port_name="http", grace_period_seconds=20.0)
    spec = replace(launch_spec("web.h", "serve", ports={"http": 31007}), health_check=check)
    await mesos.launch_on(host, spec)
    healthy = await mesos.sink.wait_for("web.h", TaskState.RUNNING)
    if healthy.healthy is None:
        healthy = await mesos.sink.wait_for(
            "web.h", TaskState.RUNNING, after=mesos.sink.statuses.index(healthy) + 1
        )
    assert healthy.healthy is True
    info = sim.framework().tasks["web.h"].info["health_check"]
    assert info["type"] == "HTTP" and info["http"] == {"scheme": "http", "port": 31007, "path": "/health"}
    assert (info["grace_period_seconds"], info["interval_seconds"], info["timeout_seconds"]) == (
        20.0,
        5.0,
        2.0,
    )
    assert info["consecutive_failures"] == 3
    mark = len(mesos.sink.statuses)
    sim.set_health("web.h", False)
    sick = await mesos.sink.wait_for("web.h", TaskState.RUNNING, after=mark)
    assert sick.healthy is False and sick.reason == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"


async def test_usage_comes_from_the_agents_for_our_tasks_only(sim: MesosMasterSim, mesos: Framework) -> None:
    other = await start_framework(sim, cluster="other")
    try:
        host = (await all_hosts(mesos))[0]
        await mesos.launch_on(
            host, launch_spec("web.u1", "sleep 60", cpus=0.5, mem=64.0), launch_spec("web.u2", "sleep 60")
        )
        await mesos.running("web.u1", "web.u2")
        await mesos.backend.want_offers(False)  # the agents go to the other framework
        await all_hosts(other)
        theirs = next(h for h in await other.backend.capacity() if h.host_id == host.host_id)
        await other.launch_on(theirs, launch_spec("their.t", "sleep 60"))
        await other.running("their.t")
        usage = {u.task_id: u for u in await mesos.backend.usage()}
        assert set(usage) == {"web.u1", "web.u2"}
        u1 = usage["web.u1"]
        assert u1.cpus_limit == pytest.approx(0.6) and u1.mem_limit_bytes == 96 * 1024 * 1024
        assert u1.mem_bytes > 0 and u1.cpu_seconds >= 0 and u1.timestamp > 0
        assert {u.task_id for u in await other.backend.usage()} == {"their.t"}
    finally:
        await other.backend.stop()


async def test_logs_read_the_sandbox_through_the_agent(sim: MesosMasterSim, mesos: Framework) -> None:
    host = (await all_hosts(mesos))[0]
    await mesos.launch_on(host, launch_spec("web.log", "serve"))
    await mesos.running("web.log")
    sim.write_output("web.log", "".join(f"line {i}\n" for i in range(1, 6)))
    sim.write_output("web.log", "oops\n", "stderr")
    tail = b"".join([c async for c in mesos.backend.logs("web.log", tail=2)])
    assert tail == b"line 4\nline 5\n"
    whole = b"".join([c async for c in mesos.backend.logs("web.log", tail=-1)])
    assert whole.startswith(b"Received SUBSCRIBED event\n") and b"Starting task web.log\n" in whole
    assert b"".join([c async for c in mesos.backend.logs("web.log", "stderr")]) == b"oops\n"

    following = mesos.backend.logs("web.log", tail=1, follow=True)
    assert await asyncio.wait_for(anext(following), DEADLINE) == b"line 5\n"
    sim.write_output("web.log", "line 6\n")
    sim.fail_task("web.log", "Command exited with status 2")

    async def rest() -> bytes:
        return b"".join([c async for c in following])

    out = await asyncio.wait_for(rest(), DEADLINE)  # ends by itself: the task has ended
    assert out.startswith(b"line 6\n") and b"Command exited with status 2\n" in out
    failed = await mesos.sink.wait_for("web.log", TaskState.FAILED)
    assert failed.exit_code == 2 and failed.message == "Command exited with status 2: oops"


async def test_an_unreachable_master_fails_start_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    backend = MesosBackend(MesosBackendConfig(master=f"127.0.0.1:{port}", cluster="test"))
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(Unavailable) as err:
        await backend.start(StatusRecorder())
    assert loop.time() - began < 2.0 and f"127.0.0.1:{port}" in err.value.message


async def test_a_master_that_never_subscribes_fails_start_within_the_timeout(sim: MesosMasterSim) -> None:
    sim.refuse_subscriptions(401, "Unauthorized")  # pymesos' thread dies on it: it must not interrupt us
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(Unavailable) as err:
        await start_framework(sim, subscribe_timeout=0.5)
    assert loop.time() - began < 3.0 and "401" in err.value.message


async def test_a_refused_resubscription_is_retried_without_interrupting_anyone(
    sim: MesosMasterSim, mesos: Framework
) -> None:
    host = (await all_hosts(mesos))[0]
    await mesos.launch_on(host, launch_spec("web.r", "sleep 60"))
    await mesos.running("web.r")
    sim.refuse_subscriptions(401, "Unauthorized")
    subscribes = sim.calls["SUBSCRIBE"]
    mark = len(mesos.sink.statuses)
    sim.drop_subscription()
    await sim.wait_until(lambda: sim.calls["SUBSCRIBE"] > subscribes)  # refused: pymesos' thread ends
    sim.accept_subscriptions()
    await mesos.reconciled("web.r", TaskState.RUNNING, after=mark)  # through a new driver, later
    assert list(sim.frameworks) == mesos.ids


async def test_a_removed_framework_is_replaced_and_its_tasks_reported_lost(
    sim: MesosMasterSim, mesos: Framework
) -> None:
    host = (await all_hosts(mesos))[0]
    await mesos.launch_on(host, launch_spec("web.gone", "sleep 60"))
    await mesos.running("web.gone")
    old = mesos.ids[0]
    mark = len(mesos.sink.statuses)
    sim.remove_framework(old)  # as if the failover timeout had run out: the tasks were killed
    lost = await mesos.sink.wait_for("web.gone", TaskState.LOST, after=mark)
    assert lost.reason == "REASON_RECONCILIATION"
    assert len(mesos.ids) == 2 and mesos.ids[1] != old and list(sim.frameworks) == [mesos.ids[1]]


async def test_a_silent_subscription_is_replaced(sim: MesosMasterSim) -> None:
    sim.config.heartbeat_interval = 0.05
    fw = await start_framework(sim, heartbeat_timeout=0.4)
    try:
        host = (await all_hosts(fw))[0]
        await fw.launch_on(host, launch_spec("web.quiet", "sleep 60"))
        await fw.running("web.quiet")
        mark = len(fw.sink.statuses)
        sim.silence_subscription()  # open, but nothing comes through: pymesos alone would wait for ever
        await fw.reconciled("web.quiet", TaskState.RUNNING, after=mark)
        assert sim.calls["SUBSCRIBE"] == 2 and list(sim.frameworks) == fw.ids
    finally:
        await fw.backend.stop()


async def test_a_scheduler_that_lost_its_framework_to_another_stops(
    sim: MesosMasterSim, mesos: Framework
) -> None:
    await all_hosts(mesos)
    fid = mesos.ids[0]
    second = await start_framework(sim, framework_id=fid)
    try:
        await until(lambda: not mesos.backend.subscribed, "the first scheduler still thinks it is subscribed")
        await second.launch_on((await all_hosts(second))[0], launch_spec("web.new", "sleep 60"))
        await second.running("web.new")
        assert sim.calls["SUBSCRIBE"] == 2 and sim.framework().stream_id  # no tug of war
    finally:
        await second.backend.stop()
