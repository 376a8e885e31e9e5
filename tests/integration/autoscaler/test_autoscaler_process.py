"""``python -m services.autoscaler`` as a real process (its own NATS user and operator token), with
the real registry and the real scheduler of ``local``: synthetic usage on ``bay.usage.local.web``
scales the group to what the load needs in one decision; a custom metric pushed on NATS scales it
again; a removed policy stops scaling; a manual scale outside the bounds is brought back. (A
SIGKILLed autoscaler: test_autoscaler_restarts.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from bay.v1 import autoscale_pb2, scheduler_pb2

from libs.errors import NotFound, ValidationFailed
from libs.events import subjects
from tests.integration.autoscaler.harness import DEADLINE, Platform, platform
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group, scale
from tests.poll import poll_until


def _policy(target: float = 0.5) -> autoscale_pb2.AutoscalePolicy:
    return autoscale_pb2.AutoscalePolicy(
        group="web",
        min=1,
        max=10,
        metrics=[
            autoscale_pb2.MetricTarget(kind="cpu", target=target),
            autoscale_pb2.MetricTarget(kind="custom", name="rps", target=100, per_task=False, pushed=True),
        ],
        up=autoscale_pb2.UpBehaviour(window_seconds=1, stable_window_seconds=1),
    )


def publish_usage(p: Platform, group: str, load: dict[str, float]) -> None:
    """Synthetic usage of the group's ready tasks at ``load["cpu"]`` each, 5 times a second."""

    async def publish() -> None:
        while True:
            batch = scheduler_pb2.UsageBatch(cluster="local", group=group)
            for t in p.view.ready_tasks(group):
                batch.samples.add(
                    task_id=t.id, timestamp=time.time(), cpu_fraction=load["cpu"], cpus_limit=1.0
                )
            await p.conn.client.publish(subjects.usage("local", group), batch.SerializeToString())
            await asyncio.sleep(0.2)  # a publisher's period, not a wait for anything

    p.run(publish)


async def test_the_autoscaler_scales_on_usage_and_pushed_metrics_and_stops_when_removed(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    async with platform(registry, fresh_stream, tmp_path) as p:
        client, view = p.autoscaler.client, p.view
        assert (tmp_path / "autoscaler.token").exists()
        await create_group(registry, name="web", cmd="sleep 1000", instances=2)
        await poll_until(lambda: len(view.ready_tasks("web")) == 2, "2 ready tasks", DEADLINE)

        bad = _policy(target=0)
        bad.max = 0
        with pytest.raises(ValidationFailed) as invalid:
            await client.set_policy(bad)
        fields = {v.field for v in invalid.value.violations}
        assert {"metrics.0.target", "max"} <= fields, fields

        load = {"cpu": 1.0}
        publish_usage(p, "web", load)
        await client.set_policy(_policy())
        # 2 tasks at 100% of their cpu, target 50%: 4 tasks, in one decision
        await poll_until(lambda: view.steps("web"), "a decision", DEADLINE)
        assert view.steps("web") == [(2, 4)]
        await poll_until(lambda: view.instances("web") == 4, "scaled to 4", DEADLINE)
        load["cpu"] = 0.5  # now at target
        await poll_until(lambda: len(view.ready_tasks("web")) == 4, "4 ready tasks", DEADLINE)

        # a custom metric, a group total pushed on NATS: 600 rps at 100 per task -> 6
        async def push_rps() -> bool:
            await p.conn.client.publish(subjects.metric("web", "rps"), b"600")
            return view.instances("web") == 6

        await poll_until(push_rps, "scaled to 6 on rps", DEADLINE)
        assert view.steps("web") == [(2, 4), (4, 6)]
        status = await client.status("web")
        assert status.policy.group == "web" and len(status.decisions) == 2

        # removed: the group stays where it is whatever the load
        assert await client.remove_policy("web")
        with pytest.raises(NotFound):
            await client.status("web")
        load["cpu"] = 1.0
        removed = time.time()

        async def a_while_later() -> bool:  # absence of a decision: a window of ticks, then look
            await p.conn.client.publish(subjects.metric("web", "rps"), b"1000")
            return time.time() > removed + 3

        await poll_until(a_while_later, "ticks after the removal", DEADLINE)
        assert view.steps("web") == [(2, 4), (4, 6)] and view.instances("web") == 6


async def test_a_manual_scale_outside_the_bounds_is_brought_back_in_one_decision(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    async with platform(registry, fresh_stream, tmp_path) as p:
        client, view = p.autoscaler.client, p.view
        await create_group(registry, name="web", cmd="sleep 1000", instances=2)
        policy = _policy()
        policy.min, policy.max = 2, 3
        await client.set_policy(policy)
        status = await poll_until(
            lambda: p.autoscaler.evaluated_after("web", 0), "a first evaluation (no data: it holds)", DEADLINE
        )
        assert "no data" in status.reason and not view.decided
        await scale(registry, "web", 6)  # a person's `bay scale`, above the policy's max
        await poll_until(lambda: view.instances("web") == 3, "brought back to max 3", DEADLINE)
        assert [(getattr(d, "from"), d.to, d.rule) for d in view.decisions("web")] == [(6, 3, "at max")]
