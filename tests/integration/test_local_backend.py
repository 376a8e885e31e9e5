"""The local backend with real processes: env and ports, kills, re-adoption, logs, usage, capacity."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from services.scheduler.backends.local import LocalBackend
from services.scheduler.backends.local.procfs import is_running
from services.scheduler.ports import TaskState
from tests.contract.test_backend_contract import (
    DEADLINE,
    StatusRecorder,
    kill_leftovers,
    launch_spec,
    local_config,
)

PY = "python3 -c"


class Local:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.sink = StatusRecorder()
        self.backend = LocalBackend(local_config(work_dir))

    async def output(self, task_id: str, needle: str, stream: str = "stdout") -> str:
        """Follow the task's log until ``needle`` shows up; the whole text read so far."""

        async def scan() -> str:
            seen = b""
            async for chunk in self.backend.logs(task_id, stream, tail=-1, follow=True):
                seen += chunk
                if needle.encode() in seen:
                    return seen.decode()
            raise AssertionError(f"{task_id} ended without writing {needle!r}: {seen!r}")

        return await asyncio.wait_for(scan(), DEADLINE)


@pytest_asyncio.fixture
async def local(tmp_path: Path) -> AsyncIterator[Local]:
    harness = Local(tmp_path)
    await harness.backend.start(harness.sink)
    try:
        yield harness
    finally:
        await harness.backend.stop()
        kill_leftovers(tmp_path)


async def process_exit(pid: int) -> None:
    """Wait (with a deadline) until ``pid`` has ended, by its pidfd."""
    fd = os.pidfd_open(pid)
    ended = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, ended.set)
    try:
        await asyncio.wait_for(ended.wait(), DEADLINE)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_env_carries_ports_host_and_group_env(local: Local) -> None:
    dump = f"{PY} 'import json,os; print(json.dumps(dict(os.environ)))'"
    spec = launch_spec("web.env", dump, ports={"http": 0, "admin": 0}, env={"GREETING": "hi"})
    await local.backend.launch([spec])
    await local.sink.wait_for("web.env", TaskState.FINISHED)
    env = json.loads((await local.output("web.env", "}")).strip())
    assert env["PORT0"] == env["PORT_HTTP"] == env["PORT"]
    assert env["PORT1"] == env["PORT_ADMIN"] != env["PORT0"]
    assert 39100 <= int(env["PORT0"]) <= 39149
    assert env["HOST"] == "bay-test-host"
    assert env["GREETING"] == "hi" and env["BAY_TASK_ID"] == "web.env"
    assert env["BAY_SANDBOX"] == str(local.backend.sandbox_of("web.env"))


async def test_ports_are_never_shared_and_a_taken_fixed_port_fails(local: Local) -> None:
    specs = [launch_spec(f"web.p{i}", "sleep 60", ports={"http": 0}) for i in range(5)]
    specs.append(launch_spec("web.fixed", "sleep 60", ports={"http": 39140}))
    await local.backend.launch(specs)
    ports = []
    for spec in specs:
        await local.sink.wait_for(spec.task_id, TaskState.RUNNING)
        doc = json.loads((local.backend.sandbox_of(spec.task_id) / "task.json").read_text())
        ports.append(doc["spec"]["ports"]["http"])
    assert len(set(ports)) == len(ports) and 39140 in ports
    await local.backend.launch([launch_spec("web.clash", "sleep 60", ports={"http": 39140})])
    clash = await local.sink.wait_for("web.clash", TaskState.FAILED, TaskState.RUNNING)
    assert clash.state is TaskState.FAILED and "39140" in clash.message


async def test_image_tasks_fail_clearly(local: Local) -> None:
    await local.backend.launch([launch_spec("web.img", None, image="nginx:1.27")])
    failed = await local.sink.wait_for("web.img", TaskState.FAILED, TaskState.RUNNING)
    assert failed.state is TaskState.FAILED and "image" in failed.message and "nginx" in failed.message


async def test_kill_is_quick_for_a_task_that_obeys_sigterm(local: Local) -> None:
    await local.backend.launch([launch_spec("web.obey", "sleep 60")])
    await local.sink.wait_for("web.obey", TaskState.RUNNING)
    began = time.monotonic()
    await local.backend.kill("web.obey", grace_seconds=5.0)
    killed = await local.sink.wait_for("web.obey", TaskState.KILLED)
    assert time.monotonic() - began < 2.0
    assert "SIGTERM" in killed.message


async def test_a_task_ignoring_sigterm_is_sigkilled_after_the_grace(local: Local) -> None:
    stubborn = f"""{PY} 'import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True: signal.pause()'"""
    await local.backend.launch([launch_spec("web.stubborn", stubborn)])
    await local.output("web.stubborn", "ready")
    pid = local.backend.pid_of("web.stubborn")
    began = time.monotonic()
    await local.backend.kill("web.stubborn", grace_seconds=0.5)
    killed = await local.sink.wait_for("web.stubborn", TaskState.KILLED)
    assert 0.5 <= time.monotonic() - began < 3.0
    assert "SIGKILL" in killed.message
    assert not is_running(pid)


async def test_a_restarted_backend_readopts_running_tasks_and_learns_how_others_ended(
    local: Local,
) -> None:
    waiter = "while [ ! -e go ]; do sleep 0.02; done; echo bye >&2; exit 4"  # in its work dir
    await local.backend.launch(
        [launch_spec("web.stay", "sleep 60", ports={"http": 0}), launch_spec("web.leave", waiter)]
    )
    await local.sink.wait_for("web.stay", TaskState.RUNNING)
    await local.sink.wait_for("web.leave", TaskState.RUNNING)
    stay_pid, leave_pid = local.backend.pid_of("web.stay"), local.backend.pid_of("web.leave")
    go = local.backend.sandbox_of("web.leave") / "work" / "go"
    await local.backend.stop()
    go.touch()
    await process_exit(leave_pid)  # it ends while no backend watches

    again = Local(local.work_dir)
    await again.backend.start(again.sink)
    try:
        running = await again.sink.wait_for("web.stay", TaskState.RUNNING)
        ended = await again.sink.wait_for("web.leave", TaskState.FAILED, TaskState.FINISHED)
        assert again.backend.pid_of("web.stay") == stay_pid
        assert running.state is TaskState.RUNNING
        assert ended.state is TaskState.FAILED and ended.exit_code == 4 and "bye" in ended.message
        assert again.sink.states("web.stay") == [TaskState.RUNNING]  # not started twice
        host = (await again.backend.capacity())[0]
        assert host.cpus == 4.0 - 0.1  # the re-adopted task still holds its share
        await again.backend.kill("web.stay", grace_seconds=5.0)
        await again.sink.wait_for("web.stay", TaskState.KILLED)
    finally:
        await again.backend.stop()

    third = Local(local.work_dir)
    await third.backend.start(third.sink)
    await third.backend.stop()
    assert third.sink.statuses == []  # what was reported once is not reported again


async def test_logs_tail_then_follow(local: Local) -> None:
    cmd = "seq 1 5; while [ ! -e more ]; do sleep 0.02; done; echo 6; echo oops >&2"
    await local.backend.launch([launch_spec("web.logs", cmd)])
    more = local.backend.sandbox_of("web.logs") / "work" / "more"
    await local.output("web.logs", "5\n")
    tail = b"".join([c async for c in local.backend.logs("web.logs", tail=2)])
    assert tail == b"4\n5\n"

    async def follow() -> bytes:
        return b"".join([c async for c in local.backend.logs("web.logs", tail=0, follow=True)])

    following = asyncio.create_task(follow())
    more.touch()
    assert await asyncio.wait_for(following, DEADLINE) == b"6\n"
    assert b"oops" in b"".join([c async for c in local.backend.logs("web.logs", "stderr")])


async def test_usage_of_a_busy_task_is_above_zero(local: Local) -> None:
    busy = f"""{PY} 'n = 0
for i in range(3_000_000): n += i
print("ready", flush=True)
while True: n += 1'"""
    await local.backend.launch([launch_spec("web.busy", busy, mem=64)])
    await local.output("web.busy", "ready")
    (usage,) = [u for u in await local.backend.usage() if u.task_id == "web.busy"]
    assert usage.cpu_seconds > 0 and usage.mem_bytes > 1024 * 1024
    assert usage.mem_limit_bytes == 64 * 1024 * 1024


async def test_capacity_shrinks_while_tasks_hold_resources(local: Local) -> None:
    before = (await local.backend.capacity())[0]
    assert (before.cpus, before.mem, before.labels) == (4.0, 1024.0, {"zone": "a"})
    await local.backend.launch([launch_spec("web.cap", "sleep 60", cpus=1.5, mem=256, ports={"http": 39100})])
    await local.sink.wait_for("web.cap", TaskState.RUNNING)
    held = (await local.backend.capacity())[0]
    assert (held.cpus, held.mem) == (2.5, 768.0)
    assert all(not (r.begin <= 39100 <= r.end) for r in held.ports)
    await local.backend.kill("web.cap", grace_seconds=5.0)
    await local.sink.wait_for("web.cap", TaskState.KILLED)
    after = (await local.backend.capacity())[0]
    assert (after.cpus, after.mem, after.ports) == (before.cpus, before.mem, before.ports)


async def test_ports_another_process_holds_are_neither_offered_nor_handed_out(local: Local) -> None:
    import socket

    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        tcp.bind(("127.0.0.1", 39101))
        tcp.listen()
        udp.bind(("::", 39102))
        offered = (await local.backend.capacity())[0].ports
        assert not any(r.begin <= p <= r.end for r in offered for p in (39101, 39102)), offered
        specs = [launch_spec(f"web.h{i}", "sleep 60", ports={"http": 0}) for i in range(4)]
        await local.backend.launch(specs)
        got = []
        for spec in specs:
            await local.sink.wait_for(spec.task_id, TaskState.RUNNING)
            doc = json.loads((local.backend.sandbox_of(spec.task_id) / "task.json").read_text())
            got.append(doc["spec"]["ports"]["http"])
        assert not {39101, 39102} & set(got), got
        await local.backend.launch([launch_spec("web.held", "sleep 60", ports={"http": 39101})])
        held = await local.sink.wait_for("web.held", TaskState.FAILED, TaskState.RUNNING)
        assert (
            held.state is TaskState.FAILED and "39101" in held.message and "another process" in held.message
        )
    finally:
        tcp.close()
        udp.close()
