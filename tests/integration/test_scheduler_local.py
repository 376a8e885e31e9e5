"""The scheduler on the local backend, as a real process: scaling, replacement, backoff, health,
placement reasons, restarts (SIGTERM and SIGKILL in the middle of a scale-up), and ClusterStatus (the UI
overview's one call per cluster: every group's counts and the hosts' capacity)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest_asyncio
from bay.v1 import scheduler_pb2
from nats.aio.msg import Msg

from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import (
    SchedulerProcess,
    create_group,
    kill_tasks,
    scale,
    task_readable_dir,
)
from tests.poll import poll_until
from tests.tasks import TINYHTTP

SICK_DIR = task_readable_dir()
_ranges = itertools.count()


def port_range() -> dict[str, str]:
    # below Linux's ephemeral range (32768-60999), so no client socket of the test holds a task's port
    base = 20000 + (next(_ranges) % 40) * 300
    return {"BAY_LOCAL_PORT_BEGIN": str(base), "BAY_LOCAL_PORT_END": str(base + 299)}


@pytest_asyncio.fixture
async def sched(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> AsyncIterator[SchedulerProcess]:
    proc = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=port_range())
    await proc.start()
    yield proc
    await proc.stop()
    kill_tasks(tmp_path)


def live_task_pids(data_dir: Path) -> dict[str, int]:
    """Task id -> pid of every task process alive on this machine, read from the sandboxes."""
    alive = {}
    for doc in data_dir.glob("local/*/sandboxes/*/task.json"):
        info = json.loads(doc.read_text())
        pid = int(info["pid"])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        alive[doc.parent.name] = pid
    return alive


async def test_scale_up_and_down_keeps_the_count_and_kills_youngest_first(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="web", cmd="sleep 300", instances=3, resources={"cpus": 0.1, "mem": 16})
    await sched.until("web", lambda s: s.ready == 3)
    first = {t.id for t in await sched.tasks("web")}
    await scale(registry, "web", 8)
    await sched.until("web", lambda s: s.ready == 8 and s.staged == 0)
    await scale(registry, "web", 3)
    await sched.until("web", lambda s: s.ready == 3 and s.killing == 0)
    left = {t.id for t in await sched.tasks("web")}
    assert left == first  # the five youngest went
    ended = [t for t in await sched.tasks("web", terminal=True) if t.state == "KILLED"]
    assert len(ended) == 5 and all(t.kill_reason == "surplus" for t in ended)
    assert set(live_task_pids(sched.data_dir)) == left


async def test_tasks_get_named_ports_and_marathon_environment(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(
        registry,
        name="api",
        cmd='echo "P0=$PORT0 PH=$PORT_HTTP HOST=$HOST"; sleep 300',
        ports=[{"name": "http"}, {"name": "admin"}],
        resources={"cpus": 0.1, "mem": 16},
    )
    await sched.until("api", lambda s: s.ready == 1)
    (task,) = await sched.tasks("api")
    assert set(task.ports) == {"http", "admin"} and task.ports["http"] != task.ports["admin"]
    assert task.host_address == "127.0.0.1" and task.hostname == "bay-test-host"
    assert sched.stub is not None
    out = b""
    async for chunk in sched.stub.TaskLogs(
        scheduler_pb2.TaskLogsRequest(id=task.id, follow=True), metadata=sched.md(), timeout=10
    ):
        out += chunk.data
        if b"\n" in out:
            break
    assert out.decode().strip() == f"P0={task.ports['http']} PH={task.ports['http']} HOST=bay-test-host"


async def test_a_crashing_task_is_replaced_with_growing_backoff(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(
        registry,
        name="crash",
        cmd="echo boom >&2; exit 3",
        backoff={"backoff_seconds": 0.2, "backoff_factor": 2.0, "max_launch_delay_seconds": 10},
        resources={"cpus": 0.1, "mem": 16},
    )
    status = await sched.until("crash", lambda s: s.pending.backoff_failures >= 3 and s.pending.count == 1)
    assert status.pending.next_attempt_at > 0 and "backoff" in status.pending.summary
    assert status.pending.backoff_delay >= 0.2 * 2 * 2 - 1e-6
    ended = sorted(
        (t for t in await sched.tasks("crash", terminal=True) if t.state == "FAILED"),
        key=lambda t: t.launched_at,
    )
    assert len(ended) >= 3
    assert all(t.exit_code == 3 and "boom" in t.message for t in ended)
    gaps = [b.launched_at - a.launched_at for a, b in itertools.pairwise(ended[:3])]
    assert gaps[0] >= 0.2 - 0.02 and gaps[1] >= 0.4 - 0.02  # launches wait out the growing delay


async def test_a_task_failing_its_health_check_is_replaced(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(
        registry,
        name="hc",
        cmd=TINYHTTP,
        env={"BAY_SICK_DIR": str(SICK_DIR)},
        ports=[{"name": "http"}],
        instances=2,
        resources={"cpus": 0.1, "mem": 16},
        health_check={
            "protocol": "http",
            "path": "/health",
            "grace_period_seconds": 5,
            "interval_seconds": 0.2,
            "timeout_seconds": 0.2,
            "max_consecutive_failures": 2,
        },
    )
    await sched.until("hc", lambda s: s.ready == 2 and s.healthy == 2)
    sick, well = await sched.tasks("hc")
    (SICK_DIR / f"sick-{sick.ports['http']}").touch()
    now = await sched.until_tasks(
        "hc",
        lambda ts: (
            ts[sick.id].state == "KILLED"
            and len([t for t in ts.values() if t.state == "RUNNING" and t.ready]) == 2
        ),
        timeout=20,
    )
    assert now[sick.id].kill_reason == "unhealthy" and now[sick.id].state == "KILLED"
    assert now[sick.id].HasField("healthy") and not now[sick.id].healthy
    from bay.v1 import task_pb2

    health = [
        task_pb2.TaskHealthChanged.FromString(r.envelope.payload.value)
        async for r in registry.log.read(1, subject_filter=f"bay.ev.task.local.{sick.id}")
        if r.envelope.type == "TaskHealthChanged"
    ]
    assert health[-1].HasField("healthy") and not health[-1].healthy and "HTTP 503" in health[-1].message
    assert now[well.id].state == "RUNNING" and now[well.id].healthy
    assert len([t for t in now.values() if t.state == "RUNNING" and t.ready]) == 2


async def test_a_constraint_no_host_meets_leaves_tasks_pending_with_the_reason(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(
        registry,
        name="mars",
        cmd="sleep 300",
        instances=2,
        constraints=[{"field": "zone", "op": "==", "value": "mars"}],
    )
    status = await sched.until("mars", lambda s: s.pending.count == 2 and bool(s.pending.reasons))
    assert dict(status.pending.reasons) == {"constraint zone==mars": 1} and status.pending.hosts == 1
    assert "zone==mars" in status.pending.summary and status.running == 0
    # the failure is stored once, not once per round
    history = [r async for r in registry.log.read(1, subject_filter="bay.ev.sched.local.mars")]
    assert [r.envelope.type for r in history] == ["PlacementFailed"]


async def test_a_restarted_scheduler_readopts_its_tasks(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="keep", cmd="sleep 300", instances=4, resources={"cpus": 0.1, "mem": 16}
    )
    await sched.until("keep", lambda s: s.ready == 4)
    before = live_task_pids(sched.data_dir)
    await sched.stop()
    assert (sched.data_dir / "snapshots" / "scheduler-local.snap").stat().st_size > 0  # written at stop
    await sched.start()
    await sched.until("keep", lambda s: s.ready == 4)
    assert live_task_pids(sched.data_dir) == before
    assert {t.id for t in await sched.tasks("keep")} == set(before)


async def test_sigkill_in_the_middle_of_a_scale_up_leaves_exactly_the_desired_count(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="big", cmd="sleep 300", instances=1, resources={"cpus": 0.05, "mem": 8})
    await sched.until("big", lambda s: s.ready == 1)
    await scale(registry, "big", 60)
    await sched.until("big", lambda s: s.staged + s.running >= 15)
    sched.sigkill()
    mid = live_task_pids(sched.data_dir)
    assert 0 < len(mid) < 60 or len(mid) == 60
    await sched.restart()
    await sched.until("big", lambda s: s.ready == 60 and s.staged == 0 and s.killing == 0, timeout=30)
    tasks = await sched.tasks("big")
    alive = live_task_pids(sched.data_dir)
    assert len(tasks) == 60
    assert set(alive) == {t.id for t in tasks}  # every live process is a task the log knows: no orphan
    assert all(mid[tid] == alive[tid] for tid in mid if tid in alive)  # re-adopted, not restarted
    ended = [t for t in await sched.tasks("big", terminal=True) if t.state != "RUNNING"]
    assert not [t for t in ended if t.kill_reason == "surplus"]  # nothing was doubled then trimmed


async def test_deleting_a_group_kills_its_tasks(registry: RunningRegistry, sched: SchedulerProcess) -> None:
    from bay.v1 import registry_pb2

    await create_group(
        registry, name="gone", cmd="sleep 300", instances=2, resources={"cpus": 0.1, "mem": 16}
    )
    await sched.until("gone", lambda s: s.ready == 2)
    ids = {t.id for t in await sched.tasks("gone")}
    await registry.stub.DeleteGroup(registry_pb2.DeleteGroupRequest(name="gone"), metadata=registry.md())
    await sched.until("gone", lambda s: not s.known and s.running == 0 and s.killing == 0)
    ended = {t.id: t for t in await sched.tasks("gone", terminal=True)}
    assert all(ended[i].state == "KILLED" and ended[i].kill_reason == "orphan" for i in ids)
    assert not set(live_task_pids(sched.data_dir)) & ids


async def test_task_usage_is_published_on_nats_for_the_autoscaler(
    registry: RunningRegistry, sched: SchedulerProcess, fresh_stream: str
) -> None:
    from bay.v1 import scheduler_pb2 as spb

    got: asyncio.Queue[spb.UsageBatch] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        got.put_nowait(spb.UsageBatch.FromString(msg.data))

    reader = await nats.connect(fresh_stream)  # as the set-up: no service of Bay reads usage yet
    sub = await reader.subscribe("bay.usage.local.busy", cb=on_msg)
    try:
        await create_group(
            registry, name="busy", cmd="while :; do :; done", instances=1, resources={"cpus": 0.1, "mem": 16}
        )
        await sched.until("busy", lambda s: s.ready == 1)
        (task,) = await sched.tasks("busy")

        async def busy_sample() -> spb.UsageSample:
            while True:
                batch = await got.get()
                for sample in batch.samples:
                    if sample.task_id == task.id and sample.cpu_fraction > 0.2:
                        assert batch.cluster == "local" and batch.group == "busy"
                        return sample

        sample = await asyncio.wait_for(busy_sample(), 15)
        assert sample.cpu_seconds > 0 and sample.mem_bytes > 0 and sample.cpus_limit == 0.1
    finally:
        await sub.unsubscribe()
        await reader.close()


async def test_a_second_scheduler_of_the_cluster_waits_until_the_first_is_gone(
    registry: RunningRegistry, sched: SchedulerProcess, fresh_stream: str, tmp_path: Path
) -> None:
    await create_group(
        registry, name="solo", cmd="sleep 300", instances=3, resources={"cpus": 0.1, "mem": 16}
    )
    await sched.until("solo", lambda s: s.ready == 3)
    before = live_task_pids(sched.data_dir)
    second = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=sched.extra_env, log_name="second")
    await second.start(wait=False)
    try:
        await poll_until(
            lambda: "is held by" in second.log_text(), "the second one waiting for the lease", 15
        )
        assert second.proc is not None and second.proc.poll() is None
        await sched.stop()  # releases the lease
        await second.until_serving()
        await second.until("solo", lambda s: s.ready == 3)
        assert live_task_pids(sched.data_dir) == before  # adopted, neither killed nor doubled
        assert {t.id for t in await second.tasks("solo")} == set(before)
    finally:
        await second.stop()


def task_processes(data_dir: Path) -> dict[str, set[int]]:
    """Task id -> every live process whose environment places it in that task's sandbox, found in
    /proc (not from the sandboxes' records: a process without one is what this looks for)."""
    root = str(data_dir.resolve() / "local" / "local" / "sandboxes") + "/"
    found: dict[str, set[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        for item in env:
            if item.startswith(b"BAY_SANDBOX=") and state != "Z":
                path = item.removeprefix(b"BAY_SANDBOX=").decode()
                if path.startswith(root):
                    found.setdefault(path[len(root) :].split("/")[0], set()).add(int(entry.name))
    return found


async def test_a_scheduler_killed_in_a_launch_burst_leaves_no_process_the_log_does_not_run(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="burst", cmd="sleep 300", instances=0, resources={"cpus": 0.05, "mem": 8}
    )
    sandboxes = sched.data_dir / "local" / "local" / "sandboxes"
    for _ in range(3):
        before = set(os.listdir(sandboxes)) if sandboxes.exists() else set()
        await scale(registry, "burst", 30)
        # SIGKILL while the backend is starting the 30 (the first sandbox is made just before its spawn)
        await poll_until(
            lambda b=before: sandboxes.exists() and set(os.listdir(sandboxes)) - b, "a launch", 15
        )
        sched.sigkill()
        await sched.restart()
        await sched.until("burst", lambda s: s.ready == 30 and s.staged == 0, timeout=30)
        running = {t.id for t in await sched.tasks("burst")}
        assert len(running) == 30
        await poll_until(
            lambda r=running: set(task_processes(sched.data_dir)) == r, "only the log's running tasks run", 10
        )
        await scale(registry, "burst", 0)
        await sched.until("burst", lambda s: s.running == 0 and s.staged == 0 and s.killing == 0, timeout=30)
        await poll_until(lambda: not task_processes(sched.data_dir), "no task process left", 10)


async def test_a_task_the_log_says_has_ended_is_killed_when_it_is_found_running(
    registry: RunningRegistry, sched: SchedulerProcess, fresh_stream: str
) -> None:
    from bay.v1 import task_pb2

    from tests.integration.dns_harness import EventWriter

    await create_group(
        registry, name="ghost", cmd="sleep 300", instances=1, resources={"cpus": 0.1, "mem": 16}
    )
    await sched.until("ghost", lambda s: s.ready == 1)
    (task,) = await sched.tasks("ghost")
    pid = live_task_pids(sched.data_dir)[task.id]
    sched.sigkill()
    # while no scheduler runs, the log comes to say the task is lost (as a reconciliation during a
    # crash once answered): the process must not outlive that
    writer = await EventWriter.open(fresh_stream)
    subject = f"bay.ev.task.local.{task.id}"
    writer.versions[subject] = task.version
    await writer.append(subject, task_pb2.TaskStatusChanged(state="LOST"), "task", task.id)
    await writer.close()
    await sched.restart()
    await sched.until("ghost", lambda s: s.ready == 1)
    (replacement,) = await sched.tasks("ghost")
    assert replacement.id != task.id
    await poll_until(lambda: task.id not in live_task_pids(sched.data_dir), "the lost task's end", 15)
    assert pid not in live_task_pids(sched.data_dir).values()


async def test_every_group_and_the_hosts_capacity_in_one_answer(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="web", cmd="sleep 300", instances=2, resources={"cpus": 0.25, "mem": 32}
    )
    await create_group(registry, name="idle", cmd="sleep 300", instances=0)
    await sched.until("web", lambda s: s.ready == 2)
    assert sched.stub is not None
    reply: scheduler_pb2.ClusterStatusReply = await sched.stub.ClusterStatus(
        scheduler_pb2.ClusterStatusRequest(), metadata=sched.md(), timeout=5
    )
    groups = {g.group: g for g in reply.groups}
    assert set(groups) == {"web", "idle"}
    web = await sched.status("web")
    assert (groups["web"].desired, groups["web"].ready, groups["web"].version) == (
        web.desired,
        2,
        web.version,
    )
    assert groups["idle"].known and groups["idle"].desired == 0
    assert reply.sequence > 0 and not reply.offer_based
    [host] = reply.hosts
    assert host.tasks == 2
    assert abs(host.cpus_used - 0.5) < 1e-9 and abs(host.mem_used - 64) < 1e-9
    assert host.cpus_free >= 0 and host.mem_free > 0
