"""The autoscaler's /metrics as a real process (with the real registry and scheduler): a manual scale
above the max is brought back by one decision, counted down; load asking for more than the max sets
``bay_autoscaler_at_max``; the desired count and the max follow the policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from libs.natsserver import free_port
from tests.integration.autoscaler.harness import DEADLINE, platform
from tests.integration.autoscaler.test_autoscaler_process import _policy, publish_usage
from tests.integration.metrics_scrape import Scrape, until_scrape
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group, scale
from tests.poll import poll_until


async def test_decisions_desired_max_and_at_max(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    metrics = f"127.0.0.1:{free_port()}"

    async def until(check: Callable[[Scrape], object], what: str) -> Scrape:
        return await until_scrape(metrics, check, what, DEADLINE)

    async with platform(registry, fresh_stream, tmp_path, env={"BAY_METRICS_LISTEN": metrics}) as p:
        await create_group(registry, name="web", cmd="sleep 1000", instances=2)
        policy = _policy()
        policy.min, policy.max = 2, 3
        await p.autoscaler.client.set_policy(policy)
        page = await until(lambda s: s.value("bay_autoscaler_max_instances", group="web") == 3, "the policy")
        assert page.value("bay_autoscaler_at_max", group="web") == 0
        assert page.value("bay_autoscaler_decisions_total", group="web") is None

        await scale(registry, "web", 6)  # above the max: brought back in one decision
        page = await until(
            lambda s: s.value("bay_autoscaler_decisions_total", group="web", direction="down") == 1,
            "the decision down counted",
        )
        assert page.value("bay_autoscaler_desired_instances", group="web") == 3
        assert page.value("bay_autoscaler_decisions_total", direction="up") is None

        await poll_until(lambda: len(p.view.ready_tasks("web")) == 3, "3 ready", DEADLINE)
        publish_usage(p, "web", {"cpu": 1.0})  # twice the target: 6 wanted, the max is 3
        page = await until(lambda s: s.value("bay_autoscaler_at_max", group="web") == 1, "at max")
        assert page.value("bay_autoscaler_desired_instances", group="web") == 3
        assert page.value("bay_autoscaler_decisions_total", group="web", direction="down") == 1
        assert page.value("bay_nats_connected", service="autoscaler") == 1
