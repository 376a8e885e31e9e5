"""The real autoscaler process: what a task burnt before it was ready (starting up) is not its load.

Each usage sample says where the interval of its cpu figure began (``cpu_since``); a figure whose
interval began before the task was ready is left out, as HPA's CPU initialisation rule has it. Ten
times the target, measured while the tasks were starting, scales nothing; the same measured after
they were ready scales the group up.
"""

from __future__ import annotations

import time
from pathlib import Path

from bay.v1 import autoscale_pb2, scheduler_pb2

from libs.events import subjects
from tests.integration.autoscaler.harness import DEADLINE, Platform, at, platform
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group
from tests.poll import poll_until

TASKS, TARGET = 2, 0.5


def _policy() -> autoscale_pb2.AutoscalePolicy:
    return autoscale_pb2.AutoscalePolicy(
        group="web", min=1, max=10, metrics=[autoscale_pb2.MetricTarget(kind="cpu", target=TARGET)]
    )


async def publish(p: Platform, cpu: float, before_ready: bool) -> float:
    """Every ready task of web at ``cpu``, its interval beginning a second before (or after) the
    task became ready; when it was sent."""
    batch = scheduler_pb2.UsageBatch(cluster="local", group="web")
    for t in p.view.ready_tasks("web"):
        ready = p.view.ready_since(t)
        assert ready is not None
        since = ready - 1.0 if before_ready else ready + 0.001
        batch.samples.add(
            task_id=t.id, timestamp=time.time(), cpu_fraction=cpu, cpus_limit=1.0, cpu_since=since
        )
    await p.conn.client.publish(subjects.usage("local", "web"), batch.SerializeToString())
    await p.conn.client.flush()
    return time.time()


async def evaluation_after(p: Platform, sent: float) -> autoscale_pb2.AutoscaleStatus:
    async def evaluated() -> autoscale_pb2.AutoscaleStatus | None:
        s = await p.autoscaler.status("web")
        return s if s.HasField("latest") and at(s.latest) > sent else None

    return await poll_until(evaluated, "an evaluation after the samples", DEADLINE)


async def test_cpu_burnt_before_the_tasks_were_ready_scales_nothing(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    env = {"BAY_AUTOSCALER_USAGE_SECONDS": "30"}  # both batches stay in the window
    async with platform(registry, fresh_stream, tmp_path, env=env) as p:
        await create_group(registry, name="web", cmd="sleep 1000", instances=TASKS)
        await poll_until(lambda: len(p.view.ready_tasks("web")) == TASKS, f"{TASKS} ready", DEADLINE)
        await p.autoscaler.client.set_policy(_policy())
        s = await evaluation_after(p, await publish(p, 10 * TARGET, before_ready=True))
        assert not s.latest.HasField("recommendation"), s  # no figure: missing, not 10x the target
        assert "no usage sample of a ready task" in s.reason, s.reason
        assert p.view.decided == [] and p.view.instances("web") == TASKS
        s = await evaluation_after(p, await publish(p, 2 * TARGET, before_ready=False))
        assert s.latest.recommendation == 2 * TASKS, s  # only what was measured once they were ready
        await poll_until(
            lambda: p.view.instances("web") > TASKS, "a scale-up on the ready tasks' cpu", DEADLINE
        )
