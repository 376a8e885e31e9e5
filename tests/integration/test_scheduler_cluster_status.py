"""``ClusterStatus`` (the UI overview's one call per cluster), with the real registry and a scheduler
process on the local backend: every group's counts as ``GroupStatus`` gives them, and the host with
what its live tasks hold and what is free."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from bay.v1 import scheduler_pb2

from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, kill_tasks


@pytest_asyncio.fixture
async def sched(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> AsyncIterator[SchedulerProcess]:
    proc = SchedulerProcess(registry, fresh_stream, tmp_path)
    await proc.start()
    yield proc
    await proc.stop()
    kill_tasks(tmp_path)


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
