"""A custom metric scraped from the group's own tasks scales it, through the real autoscaler process:
real burn.py tasks launched by the local scheduler serve ``requests_per_second`` on their port
``http`` (/metrics, Prometheus text); the test sends them requests, the autoscaler scrapes each
ready task (sources.prometheus) and scales the group to what the rate needs per task."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from bay.v1 import autoscale_pb2

from tests.integration.autoscaler.harness import DEADLINE, Platform, platform
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group
from tests.poll import poll_until
from tests.tasks import TASK_PYTHON

BURN = Path(__file__).resolve().parents[2] / "tasks" / "burn.py"
PORTS = {"BAY_LOCAL_PORT_BEGIN": "19500", "BAY_LOCAL_PORT_END": "19599"}  # below the ephemeral range
# requests/s paced (one at a time, so somewhat fewer arrive), wanted per task, the policy's max: the
# rate needs more than MAX tasks, whatever the machine's latency takes off it
RATE, PER_TASK, MAX = 80.0, 5.0, 4


def _policy() -> autoscale_pb2.AutoscalePolicy:
    scrape = autoscale_pb2.PrometheusSource(port_name="http", metric="requests_per_second")
    return autoscale_pb2.AutoscalePolicy(
        group="burn",
        min=1,
        max=MAX,
        metrics=[autoscale_pb2.MetricTarget(kind="custom", name="rps", target=PER_TASK, prometheus=scrape)],
        up=autoscale_pb2.UpBehaviour(window_seconds=1, stable_window_seconds=1),
    )


def send_requests(p: Platform) -> None:
    """RATE requests a second, spread over the group's ready tasks in turn (a load balancer's)."""

    async def load() -> None:
        async with httpx.AsyncClient(timeout=2.0) as http:
            n = 0
            while True:
                tasks = p.view.ready_tasks("burn")
                if tasks:
                    t = tasks[n % len(tasks)]
                    n += 1
                    try:
                        await http.get(f"http://{t.host}:{t.ports['http']}/?ms=1")
                    except httpx.HTTPError:
                        pass  # a task going away: the next one takes it
                await asyncio.sleep(1 / RATE)  # the load's pace, not a wait for anything

    p.run(load)


async def test_a_metric_scraped_from_the_groups_tasks_scales_it(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path, record_property: Any
) -> None:
    async with platform(registry, fresh_stream, tmp_path, scheduler_env=PORTS) as p:
        view = p.view
        await create_group(
            registry,
            name="burn",
            cmd=f"{TASK_PYTHON} -S {BURN}",
            env={"BURN_RATE_WINDOW": "1"},
            ports=[{"name": "http"}],
            instances=1,
            resources={"cpus": 0.1, "mem": 32},
            health_check={
                "protocol": "http",
                "path": "/health",
                "interval_seconds": 0.5,
                "timeout_seconds": 0.5,
            },
        )
        await poll_until(lambda: len(view.ready_tasks("burn")) == 1, "a ready burn task", DEADLINE)
        await p.autoscaler.client.set_policy(_policy())
        s = await poll_until(lambda: p.autoscaler.evaluated_after("burn", 0), "an evaluation", DEADLINE)
        assert s.latest.metrics[0].value == 0.0 and view.decided == []  # idle, scraped: 0 is a value

        send_requests(p)
        await poll_until(
            lambda: view.instances("burn") == MAX, f"scaled to {MAX} on the scraped rate", DEADLINE
        )
        first = view.decisions("burn")[0]
        assert getattr(first, "from") == 1 and first.to > 1, first
        assert first.metrics[0].name == "rps" and first.metrics[0].value >= PER_TASK * 1.1, first
        assert view.steps("burn")[-1][1] == MAX
        await poll_until(lambda: len(view.ready_tasks("burn")) == MAX, f"{MAX} ready", DEADLINE)
        seen = f"{first.metrics[0].value:.1f} requests/s scraped on 1 task"
        record_property("figure", f"{seen}, target {PER_TASK:g}: steps {view.steps('burn')} ({first.rule})")
