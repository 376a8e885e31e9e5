"""The real autoscaler process under synthetic usage on ``bay.usage.local.web``: a noisy steady load
(±15% around the target, once a second, for the group's ready tasks) changes nothing, in either
direction; the usage then gone, nothing scales down past the down window (missing data is not 0),
and status names the missing data. The figures (evaluations, recommendations) go to the run's
summary."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bay.v1 import autoscale_pb2, scheduler_pb2

from libs.events import subjects
from tests.integration.autoscaler.harness import DEADLINE, Platform, at, platform
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group
from tests.poll import poll_until

TASKS, TARGET, NOISE, SECONDS = 4, 0.5, 0.15, 20
USAGE_SECONDS, DOWN_WINDOW = 1.5, 3.0


def _policy() -> autoscale_pb2.AutoscalePolicy:
    return autoscale_pb2.AutoscalePolicy(
        group="web",
        min=1,
        max=10,
        metrics=[autoscale_pb2.MetricTarget(kind="cpu", target=TARGET)],
        down=autoscale_pb2.DownBehaviour(window_seconds=DOWN_WINDOW, cooldown_seconds=0),
    )


class NoisyUsage:
    """Once a second, every ready task of web at TARGET x (1 ± NOISE), one draw per second (the
    group's average swings the whole ±15%), SECONDS times; after each, the status's evaluation."""

    def __init__(self, p: Platform, seed: int = 12) -> None:
        self.p = p
        self.rng = random.Random(seed)
        self.evaluations: dict[float, int] = {}  # evaluation time -> recommendation
        self.last_sent = 0.0
        self.done = asyncio.Event()

    async def __call__(self) -> None:
        for _ in range(SECONDS):
            level = TARGET * (1 + self.rng.uniform(-NOISE, NOISE))
            batch = scheduler_pb2.UsageBatch(cluster="local", group="web")
            for t in self.p.view.ready_tasks("web"):
                batch.samples.add(task_id=t.id, timestamp=time.time(), cpu_fraction=level, cpus_limit=1.0)
            await self.p.conn.client.publish(subjects.usage("local", "web"), batch.SerializeToString())
            self.last_sent = time.time()
            s = await self.p.autoscaler.status("web")
            if s.HasField("latest") and s.latest.HasField("recommendation"):
                self.evaluations[at(s.latest)] = s.latest.recommendation
            await asyncio.sleep(1.0)  # the load's period, not a wait for anything
        self.done.set()


async def test_noisy_usage_changes_nothing_and_usage_gone_scales_nothing_down(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path, record_property: Any
) -> None:
    env = {"BAY_AUTOSCALER_USAGE_SECONDS": str(USAGE_SECONDS)}
    async with platform(registry, fresh_stream, tmp_path, env=env) as p:
        a, view = p.autoscaler, p.view
        await create_group(registry, name="web", cmd="sleep 1000", instances=TASKS)
        await poll_until(lambda: len(view.ready_tasks("web")) == TASKS, f"{TASKS} ready", DEADLINE)
        await a.client.set_policy(_policy())
        noisy = NoisyUsage(p)
        p.run(noisy)
        await poll_until(noisy.done.wait, f"{SECONDS} s of noisy usage", SECONDS + DEADLINE)
        assert len(noisy.evaluations) >= SECONDS // 2, noisy.evaluations  # it did evaluate the noise
        assert view.decided == [] and view.instances("web") == TASKS  # no change, so no direction change
        record_property(
            "figure",
            f"±{NOISE:.0%} usage for {SECONDS} s: {len(noisy.evaluations)} evaluations seen, recommendations "
            f"{dict(sorted(Counter(noisy.evaluations.values()).items()))}, {len(view.decided)} decisions, "
            "0 direction changes",
        )

        # the usage gone: past the usage window and the down window, evaluations hold
        gone = noisy.last_sent + USAGE_SECONDS + DOWN_WINDOW + 2
        s = await poll_until(lambda: a.evaluated_after("web", gone), "evaluations past the windows", DEADLINE)
        assert view.decided == [] and view.instances("web") == TASKS
        assert s.reason.startswith("no data for cpu (waiting)"), s.reason
        # the mean's span: 1.5 s, or two of the publisher's periods (here about 1 s) where that is more
        assert re.search(
            r"cpu: no usage sample of a ready task in 2(\.0\d?)? s \(last \d+ s ago\)", s.reason
        ), s.reason
        assert not s.latest.metrics[0].HasField("value")
