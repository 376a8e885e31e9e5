"""The scheduler process on the Mesos backend against a simulator whose agents run tasks for real
(``run_commands``): a group's HTTP server is reachable where the scheduler says it is, Mesos' own
health check (run by the simulated agent) makes it healthy, and scaling down ends its process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from tests.integration.registry_harness import RunningRegistry, start_registry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, register_cluster, scale
from tests.mesos_sim.master import MesosMasterSim, SimConfig
from tests.poll import poll_until
from tests.tasks import TASK_PYTHON

SMALL = {"cpus": 0.1, "mem": 32}


@pytest_asyncio.fixture
async def registry(fresh_stream: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    reg = await start_registry(fresh_stream, tmp_path)
    yield reg
    await reg.stop()


@pytest_asyncio.fixture
async def sim(tmp_path: Path) -> AsyncIterator[MesosMasterSim]:
    master = MesosMasterSim(2, SimConfig(run_commands=True, work_dir=tmp_path / "agents"))
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


async def answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_groups_http_server_runs_is_healthy_reachable_and_ends_on_scale_down(
    registry: RunningRegistry, sim: MesosMasterSim, sched: SchedulerProcess
) -> None:
    await create_group(
        registry, name="web", cluster="sim", cmd=f"exec {TASK_PYTHON} -m http.server $PORT0",
        instances=2, resources=SMALL, ports=[{"name": "http"}],
        health_check={"protocol": "http", "path": "/", "interval_seconds": 0.5, "timeout_seconds": 0.5},
    )  # fmt: skip
    await sched.until("web", lambda s: s.healthy == 2 and s.ready == 2, timeout=30)
    tasks = await sched.tasks("web")
    for task in tasks:
        assert task.host_address == "127.0.0.1"
        assert await answers(f"http://{task.host_address}:{task.ports['http']}/")
    await scale(registry, "web", 1)
    await sched.until("web", lambda s: s.ready == 1 and s.killing == 0, timeout=30)
    left = {t.id for t in await sched.tasks("web") if t.ready}
    (gone,) = [t for t in tasks if t.id not in left]

    async def refused() -> bool:
        return not await answers(f"http://127.0.0.1:{gone.ports['http']}/")

    await poll_until(refused, "the scaled-down task's server is gone", 15)
