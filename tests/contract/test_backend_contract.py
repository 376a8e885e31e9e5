"""One contract for every ClusterBackend: what the scheduler core may rely on, whatever the cluster.

Parametrized by backend kind: "local" (real processes on this machine) and "mesos" (the Mesos backend
through pymesos against the master simulator of ``tests/mesos_sim``, whose command executor plays the
few shell commands used here: echo, sleep, exit). Tasks are launched where ``capacity()`` says there is
room, as the scheduler core does: the local backend offers itself, Mesos offers its agents.
The helpers here (StatusRecorder, launch_spec, kill_leftovers) are shared with the integration tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import pytest_asyncio

from libs.errors import NotFound
from services.scheduler.backends.local import LocalBackend, LocalBackendConfig
from services.scheduler.backends.mesos import MesosBackend, MesosBackendConfig
from services.scheduler.ports import (
    Artifact,
    ClusterBackend,
    Host,
    LaunchSpec,
    TaskState,
    TaskStatus,
    TaskUsage,
)
from tests.mesos_sim import MesosMasterSim, SimConfig
from tests.poll import poll_until

BACKENDS = ["local", "mesos"]
DEADLINE = 10.0


class StatusRecorder:
    """The sink given to a backend: keeps every update and lets a test wait for one, with a deadline."""

    def __init__(self) -> None:
        self.statuses: list[TaskStatus] = []
        self._changed = asyncio.Condition()

    async def __call__(self, status: TaskStatus) -> None:
        async with self._changed:
            self.statuses.append(status)
            self._changed.notify_all()

    async def wait_for(
        self, task_id: str, *states: TaskState, after: int = 0, timeout: float = DEADLINE
    ) -> TaskStatus:
        """The first update of ``task_id`` in one of ``states`` among updates from index ``after``."""

        async def first() -> TaskStatus:
            async with self._changed:
                while True:
                    for status in self.statuses[after:]:
                        if status.task_id == task_id and status.state in states:
                            return status
                    await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)

    def states(self, task_id: str) -> list[TaskState]:
        return [s.state for s in self.statuses if s.task_id == task_id]


def launch_spec(
    task_id: str,
    cmd: str | None,
    *,
    ports: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
    cpus: float = 0.1,
    mem: float = 32.0,
    image: str | None = None,
    fetch: tuple[Artifact, ...] = (),
) -> LaunchSpec:
    return LaunchSpec(
        task_id=task_id,
        group=task_id.split(".")[0],
        group_version=1,
        host_id="local",
        offer_id=None,
        cmd=cmd,
        image=image,
        args=(),
        env=env or {},
        cpus=cpus,
        mem=mem,
        disk=0.0,
        ports=ports or {},
        fetch=fetch,
    )


def kill_leftovers(work_dir: Path) -> None:
    """SIGKILL the process group of every task a test left behind (by the pids in task.json)."""
    for doc_path in work_dir.glob("**/sandboxes/*/task.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads(doc_path.read_text())["pid"])
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def local_config(work_dir: Path, **overrides: object) -> LocalBackendConfig:
    settings: dict[str, object] = {
        "work_dir": work_dir,
        "hostname": "bay-test-host",
        "labels": {"zone": "a"},
        "cpus": 4.0,
        "mem": 1024.0,
        "disk": 2048.0,
        "port_begin": 39100,
        "port_end": 39149,
        **overrides,
    }
    return LocalBackendConfig(**settings)  # type: ignore[arg-type]


async def hosts_with(backend: ClusterBackend, cpus: float = 0.0, timeout: float = DEADLINE) -> list[Host]:
    """The backend's capacity once some host has ``cpus`` free (Mesos: once offers have come)."""

    async def offered() -> list[Host]:
        return [h for h in await backend.capacity() if h.cpus >= cpus]

    return await poll_until(offered, f"a host with {cpus} cpus offered", timeout)


async def place(backend: ClusterBackend, *specs: LaunchSpec) -> list[LaunchSpec]:
    """The specs on one host (and offer) the backend has room on, as the scheduler core would."""
    host = (await hosts_with(backend, sum(s.cpus for s in specs)))[0]
    return [replace(s, host_id=host.host_id, offer_id=host.offer_id) for s in specs]


@dataclass
class Running:
    backend: ClusterBackend
    sink: StatusRecorder
    sim: MesosMasterSim | None = None

    async def launch(self, *specs: LaunchSpec) -> None:
        await self.backend.launch(await place(self.backend, *specs))


@pytest_asyncio.fixture(params=BACKENDS)
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    sink = StatusRecorder()
    if request.param == "local":
        local = LocalBackend(local_config(tmp_path))
        await local.start(sink)
        try:
            yield Running(local, sink)
        finally:
            await local.stop()
            kill_leftovers(tmp_path)
        return
    sim = MesosMasterSim(agents=3, config=SimConfig(run_commands=True))
    await sim.start()
    mesos = MesosBackend(MesosBackendConfig(master=sim.address, cluster="contract"))
    try:
        await mesos.start(sink)
        yield Running(mesos, sink, sim)
    finally:
        await mesos.stop()
        await sim.stop()


async def test_a_task_that_exits_0_goes_starting_running_finished(cluster: Running) -> None:
    await cluster.launch(launch_spec("web.ok", "exit 0"))
    done = await cluster.sink.wait_for("web.ok", TaskState.FINISHED, TaskState.FAILED)
    assert done.state is TaskState.FINISHED
    assert cluster.sink.states("web.ok") == [TaskState.STARTING, TaskState.RUNNING, TaskState.FINISHED]


async def test_a_failing_task_says_its_exit_code_and_last_error_line(cluster: Running) -> None:
    await cluster.launch(launch_spec("web.bad", "echo 'db is down' >&2; exit 3"))
    failed = await cluster.sink.wait_for("web.bad", TaskState.FAILED, TaskState.FINISHED)
    assert failed.state is TaskState.FAILED
    assert failed.exit_code == 3
    assert "3" in failed.message and "db is down" in failed.message


async def test_kill_ends_a_running_task_with_killed(cluster: Running) -> None:
    await cluster.launch(launch_spec("web.long", "sleep 60"))
    await cluster.sink.wait_for("web.long", TaskState.RUNNING)
    await cluster.backend.kill("web.long", grace_seconds=5.0)
    killed = await cluster.sink.wait_for("web.long", TaskState.KILLED, TaskState.FAILED)
    assert killed.state is TaskState.KILLED


async def test_reconcile_answers_known_tasks_and_loses_unknown_ones(cluster: Running) -> None:
    await cluster.launch(launch_spec("web.rec", "sleep 60"))
    await cluster.sink.wait_for("web.rec", TaskState.RUNNING)
    mark = len(cluster.sink.statuses)
    await cluster.backend.reconcile(["web.rec", "web.ghost"])
    again = await cluster.sink.wait_for("web.rec", TaskState.RUNNING, after=mark)
    ghost = await cluster.sink.wait_for("web.ghost", *list(TaskState), after=mark)
    assert again.reason == "REASON_RECONCILIATION"
    assert ghost.state is TaskState.LOST and ghost.reason == "REASON_RECONCILIATION"


async def test_capacity_offers_resources_and_ports(cluster: Running) -> None:
    hosts = await hosts_with(cluster.backend)
    assert hosts and all(h.cpus > 0 and h.mem > 0 and h.ports for h in hosts)


async def test_kill_of_an_unknown_task_says_it_is_lost(cluster: Running) -> None:
    await cluster.backend.kill("web.nobody", grace_seconds=1.0)
    lost = await cluster.sink.wait_for("web.nobody", *list(TaskState))
    assert lost.state is TaskState.LOST


async def test_logs_show_what_the_task_printed(cluster: Running) -> None:
    await cluster.launch(launch_spec("web.say", "echo hello from bay; echo careful >&2; sleep 60"))
    await cluster.sink.wait_for("web.say", TaskState.RUNNING)

    async def read(stream: str, needle: bytes) -> bytes:
        async def seen() -> bytes:  # the task may not have printed yet when RUNNING is reported
            out = b"".join([c async for c in cluster.backend.logs("web.say", stream, tail=-1)])
            return out if needle in out else b""

        return await poll_until(seen, f"{needle!r} in {stream}", DEADLINE)

    await read("stdout", b"hello from bay\n")
    await read("stderr", b"careful\n")
    last = b"".join([c async for c in cluster.backend.logs("web.say", "stdout", tail=1)])
    assert last.count(b"\n") == 1
    with pytest.raises(NotFound):
        [c async for c in cluster.backend.logs("web.never-launched")]


async def test_usage_covers_running_tasks(cluster: Running) -> None:
    await cluster.launch(launch_spec("web.use", "sleep 60", mem=64.0))
    await cluster.sink.wait_for("web.use", TaskState.RUNNING)

    async def sampled() -> list[TaskUsage]:
        # a sample taken while the process is still starting may show no memory yet: wait for one
        # with memory (a backend that never reports it fails here)
        return [u for u in await cluster.backend.usage() if u.task_id == "web.use" and u.mem_bytes > 0]

    found = await poll_until(sampled, "usage with memory for a running task", DEADLINE)
    assert found[0].mem_bytes > 0 and found[0].timestamp > 0
