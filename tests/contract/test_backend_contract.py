"""One contract for every ClusterBackend: what the scheduler core may rely on, whatever the cluster.

Parametrized by backend kind; today "local" (real processes on this machine). The Mesos backend
against the master simulator joins by adding its kind to BACKENDS and a branch in ``make_backend``.
The helpers here (StatusRecorder, launch_spec, kill_leftovers) are shared with the integration tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from services.scheduler.backends.local import LocalBackend, LocalBackendConfig
from services.scheduler.ports import ClusterBackend, LaunchSpec, TaskState, TaskStatus

BACKENDS = ["local"]
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


@dataclass
class Running:
    backend: ClusterBackend
    sink: StatusRecorder


@pytest_asyncio.fixture(params=BACKENDS)
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    sink = StatusRecorder()
    backend = LocalBackend(local_config(tmp_path))
    await backend.start(sink)
    try:
        yield Running(backend, sink)
    finally:
        await backend.stop()
        kill_leftovers(tmp_path)


async def test_a_task_that_exits_0_goes_starting_running_finished(cluster: Running) -> None:
    await cluster.backend.launch([launch_spec("web.ok", "exit 0")])
    done = await cluster.sink.wait_for("web.ok", TaskState.FINISHED, TaskState.FAILED)
    assert done.state is TaskState.FINISHED
    assert cluster.sink.states("web.ok") == [TaskState.STARTING, TaskState.RUNNING, TaskState.FINISHED]


async def test_a_failing_task_says_its_exit_code_and_last_error_line(cluster: Running) -> None:
    await cluster.backend.launch([launch_spec("web.bad", "echo 'db is down' >&2; exit 3")])
    failed = await cluster.sink.wait_for("web.bad", TaskState.FAILED, TaskState.FINISHED)
    assert failed.state is TaskState.FAILED
    assert failed.exit_code == 3
    assert "3" in failed.message and "db is down" in failed.message


async def test_kill_ends_a_running_task_with_killed(cluster: Running) -> None:
    await cluster.backend.launch([launch_spec("web.long", "sleep 60")])
    await cluster.sink.wait_for("web.long", TaskState.RUNNING)
    await cluster.backend.kill("web.long", grace_seconds=5.0)
    killed = await cluster.sink.wait_for("web.long", TaskState.KILLED, TaskState.FAILED)
    assert killed.state is TaskState.KILLED


async def test_reconcile_answers_known_tasks_and_loses_unknown_ones(cluster: Running) -> None:
    await cluster.backend.launch([launch_spec("web.rec", "sleep 60")])
    await cluster.sink.wait_for("web.rec", TaskState.RUNNING)
    mark = len(cluster.sink.statuses)
    await cluster.backend.reconcile(["web.rec", "web.ghost"])
    again = await cluster.sink.wait_for("web.rec", TaskState.RUNNING, after=mark)
    ghost = await cluster.sink.wait_for("web.ghost", *list(TaskState), after=mark)
    assert again.reason == "REASON_RECONCILIATION"
    assert ghost.state is TaskState.LOST and ghost.reason == "REASON_RECONCILIATION"


async def test_capacity_offers_resources_and_ports(cluster: Running) -> None:
    hosts = await cluster.backend.capacity()
    assert hosts and all(h.cpus > 0 and h.mem > 0 and h.ports for h in hosts)
