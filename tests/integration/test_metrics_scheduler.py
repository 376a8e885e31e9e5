"""The scheduler's /metrics, as a real process on the local backend: the group gauges follow a scale,
a task killed behind Bay's back counts a restart and a failure, a group that cannot be placed counts
placement failures, and a restarted scheduler does not count the log's history again."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from libs.natsserver import free_port
from tests.integration.metrics_scrape import Scrape, try_scrape
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, kill_tasks, scale
from tests.integration.test_scheduler_local import live_task_pids, port_range
from tests.poll import poll_until

DEADLINE = 30.0


@pytest_asyncio.fixture
async def sched(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> AsyncIterator[SchedulerProcess]:
    env = {**port_range(), "BAY_METRICS_LISTEN": f"127.0.0.1:{free_port()}"}
    proc = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=env)
    await proc.start()
    yield proc
    await proc.stop()
    kill_tasks(tmp_path)


def address(sched: SchedulerProcess) -> str:
    return sched.extra_env["BAY_METRICS_LISTEN"]


async def until(sched: SchedulerProcess, what: str, check: object) -> Scrape:
    async def look() -> Scrape | None:
        page = await try_scrape(address(sched))
        return page if page is not None and check(page) else None  # type: ignore[operator]

    result: Scrape = await poll_until(look, what, DEADLINE)
    return result


async def test_group_gauges_restarts_failures_and_the_common_series(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(registry, name="web", cmd="sleep 300", instances=2, resources={"cpus": 0.1, "mem": 16})
    page = await until(
        sched,
        "2 desired, 2 ready",
        lambda p: (
            p.value("bay_group_ready_tasks", group="web") == 2
            and p.value("bay_group_desired_instances", group="web") == 2
        ),
    )
    assert page.labelsets("bay_group_ready_tasks") == [{"cluster": "local", "group": "web"}]
    assert page.value("bay_group_tasks", group="web", state="running", cluster="local") == 2
    assert page.value("bay_group_tasks", group="web", state="staging") == 0
    assert page.value("bay_task_restarts_total", group="web") is None  # nothing has restarted
    assert page.value("bay_task_launch_to_ready_seconds_count", cluster="local") == 2
    assert page.types["bay_task_launch_to_ready_seconds"] == "histogram"
    assert (page.value("bay_scheduler_round_seconds_count", cluster="local") or 0) >= 1
    # the common series, labelled with the process's name
    assert page.value("bay_nats_connected", service="scheduler") == 1
    assert (page.value("bay_fold_sequence", service="scheduler") or 0) > 0
    assert page.value("bay_fold_lag_events", service="scheduler") is not None
    assert page.value("bay_fold_skipped_events_total", service="scheduler") == 0
    assert (page.value("bay_eventlog_append_seconds_count", service="scheduler") or 0) >= 1

    await scale(registry, "web", 3)
    await until(
        sched,
        "3 desired, 3 ready",
        lambda p: (
            p.value("bay_group_ready_tasks", group="web") == 3
            and p.value("bay_group_desired_instances", group="web") == 3
        ),
    )

    victim = sorted(live_task_pids(sched.data_dir).values())[0]
    os.kill(victim, signal.SIGKILL)  # behind Bay's back: replaced, a restart and a failure
    page = await until(
        sched,
        "a restart counted and the group whole again",
        lambda p: (
            p.value("bay_task_restarts_total", group="web") == 1
            and p.value("bay_group_ready_tasks", group="web") == 3
        ),
    )
    assert page.value("bay_task_failures_total", group="web", cluster="local") == 1
    assert page.value("bay_task_launch_to_ready_seconds_count") == 4

    await scale(registry, "web", 2)  # a scale-down's kill is neither a restart nor a failure
    await until(
        sched,
        "scaled down",
        lambda p: (
            p.value("bay_group_tasks", group="web", state="running") == 2
            and p.value("bay_group_tasks", group="web", state="killing") == 0
        ),
    )
    page = await until(sched, "the page", lambda p: True)
    assert page.value("bay_task_restarts_total", group="web") == 1
    assert page.value("bay_task_failures_total", group="web") == 1

    await create_group(
        registry, name="huge", cmd="sleep 300", instances=1, resources={"cpus": 1000, "mem": 16}
    )
    await until(
        sched,
        "a placement failure counted",
        lambda p: (
            (p.value("bay_placement_failures_total", group="huge") or 0) >= 1
            and p.value("bay_group_desired_instances", group="huge") == 1
            and p.value("bay_group_ready_tasks", group="huge") == 0
        ),
    )

    # a restarted scheduler replays the log: what it counts starts again from nothing
    await sched.restart()
    page = await until(
        sched, "the restarted scheduler's page", lambda p: p.value("bay_group_ready_tasks", group="web") == 2
    )
    assert page.value("bay_task_restarts_total", group="web") is None
    assert page.value("bay_task_failures_total", group="web") is None
    assert (page.value("bay_task_launch_to_ready_seconds_count") or 0) == 0
