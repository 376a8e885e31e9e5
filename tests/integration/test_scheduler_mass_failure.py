"""Ready tasks killed from outside all at once are replaced at once: their ends do not grow the
group's launch backoff (backoff is for tasks that fail to start). Real scheduler, real task processes
with real HTTP health checks, real SIGKILLs."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.integration.registry_harness import start_registry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, kill_tasks, register_cluster
from tests.integration.test_scheduler_local import TINYHTTP, live_task_pids, port_range

N = 20
CHECK = {
    "protocol": "http",
    "path": "/health",
    "port_name": "http",
    "grace_period_seconds": 5,
    "interval_seconds": 0.5,
    "timeout_seconds": 0.5,
    "max_consecutive_failures": 3,
}


@pytest_asyncio.fixture
async def sched(fresh_stream: str, tmp_path: Path) -> AsyncIterator[SchedulerProcess]:
    registry = await start_registry(fresh_stream, tmp_path)
    await register_cluster(registry, "local", "local")
    proc = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=port_range())
    await proc.start()
    yield proc
    await proc.stop()
    await registry.stop()
    kill_tasks(tmp_path)


async def test_ready_tasks_killed_from_outside_are_all_replaced_without_backoff(
    sched: SchedulerProcess,
) -> None:
    registry = sched.registry
    await create_group(
        registry, name="web", cmd=TINYHTTP, instances=N, ports=[{"name": "http"}],
        resources={"cpus": 0.05, "mem": 8}, health_check=CHECK,
    )  # fmt: skip
    await sched.until("web", lambda s: s.ready == N and s.healthy == N, timeout=30)
    before = live_task_pids(sched.data_dir)
    assert len(before) == N
    for pid in before.values():
        os.killpg(pid, signal.SIGKILL)  # an outside kill of every ready task at once
    now = await sched.until_tasks(
        "web",
        lambda ts: (
            all(ts[t].state == "FAILED" for t in before if t in ts)
            and sum(1 for t in ts.values() if t.id not in before and t.state == "RUNNING" and t.ready) == N
        ),
        timeout=30,
    )
    assert not [t for t in now.values() if t.id not in before and t.state != "RUNNING"]
    status = await sched.status("web")
    assert status.ready == N and status.pending.backoff_failures == 0
    grown = [
        r.envelope.type
        async for r in registry.log.read(1, subject_filter="bay.ev.sched.local.web")
        if r.envelope.type == "GroupBackoffChanged"
    ]
    assert grown == []  # no delay was stored for the ends of tasks that had been ready
    assert set(live_task_pids(sched.data_dir)).isdisjoint(before)
