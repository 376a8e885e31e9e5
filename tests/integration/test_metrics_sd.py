"""``GET /v1/sd/prometheus``: the configured processes and exactly the ready tasks with a port named
``metrics``, in Prometheus' HTTP SD format, from the gateway's live view of the log (the task events
written as the scheduler writes them); a viewer's token needed; ``[]`` when there is nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.integration.dns_harness import EventWriter
from tests.integration.gateway_harness import Stack, bearer, start_stack
from tests.poll import poll_until

PROCESSES = [
    {"address": "127.0.0.1:9310", "labels": {"bay_service": "registry"}},
    {"address": "127.0.0.1:9311", "labels": {"bay_service": "scheduler", "cluster": "local"}},
]


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    s = await start_stack(fresh_stream, tmp_path)
    yield s
    await s.stop()


@pytest_asyncio.fixture
async def writer(fresh_stream: str) -> AsyncIterator[EventWriter]:
    w = await EventWriter.open(fresh_stream)
    yield w
    await w.close()


async def targets(stack: Stack) -> list[dict[str, Any]]:
    resp = await stack.client.get("/v1/sd/prometheus", headers=stack.viewer)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body: list[dict[str, Any]] = resp.json()
    return body


async def until_targets(stack: Stack, check: Any, what: str) -> list[dict[str, Any]]:
    async def look() -> list[dict[str, Any]] | None:
        body = await targets(stack)
        return body if check(body) else None

    result: list[dict[str, Any]] = await poll_until(look, what, 15.0)
    return result


async def test_empty_is_an_empty_list_and_a_token_is_needed(stack: Stack) -> None:
    assert await targets(stack) == []
    resp = await stack.client.get("/v1/sd/prometheus")
    assert resp.status_code == 401, resp.text
    resp = await stack.client.get("/v1/sd/prometheus", headers=bearer("not-a-token"))
    assert resp.status_code == 401, resp.text


async def test_processes_and_exactly_the_ready_tasks_with_a_metrics_port(
    fresh_stream: str, tmp_path: Path, writer: EventWriter
) -> None:
    s = await start_stack(fresh_stream, tmp_path, metrics_targets=PROCESSES)
    try:
        await _check(s, writer)
    finally:
        await s.stop()


async def _check(s: Stack, writer: EventWriter) -> None:
    body = await targets(s)
    assert body == [
        {"targets": ["127.0.0.1:9310"], "labels": {"bay_service": "registry", "bay_kind": "process"}},
        {
            "targets": ["127.0.0.1:9311"],
            "labels": {"bay_service": "scheduler", "cluster": "local", "bay_kind": "process"},
        },
    ]
    await writer.group("api", service="front", ports={"http": "tcp", "metrics": "tcp"}, health=True)
    await writer.group("web", ports={"http": "tcp"})  # no metrics port: never listed
    await writer.group("stats", ports={"metrics": "tcp"}, labels={"metrics_path": "/stats"})
    front = {"service": "front"}  # the group's service, as the scheduler writes it on each launch
    ready = await writer.launch(
        "api", "10.0.0.1", {"http": 31000, "metrics": 31001}, hostname="host-a", **front
    )
    await writer.health(ready, True)
    unchecked = await writer.launch(
        "api", "10.0.0.2", {"http": 31002, "metrics": 31003}, **front
    )  # unchecked
    staging = await writer.launch(
        "api", "10.0.0.3", {"http": 31004, "metrics": 31005}, running=False, **front
    )
    await writer.launch("web", "10.0.0.4", {"http": 31006})
    custom = await writer.launch("stats", "10.0.0.5", {"metrics": 31007}, hostname="host-b")

    body = await until_targets(s, lambda b: len(b) == 4, "two ready tasks listed")
    tasks = {t["labels"]["task"]: t for t in body if t["labels"]["bay_kind"] == "task"}
    assert set(tasks) == {ready, custom}, json.dumps(body, indent=1)
    assert tasks[ready] == {
        "targets": ["10.0.0.1:31001"],
        "labels": {
            "bay_kind": "task",
            "group": "api",
            "service": "front",
            "cluster": "local",
            "version": "1",
            "build": "",
            "host": "host-a",
            "task": ready,
        },
    }
    assert tasks[custom]["targets"] == ["10.0.0.5:31007"]
    assert tasks[custom]["labels"]["__metrics_path__"] == "/stats"
    assert "__metrics_path__" not in tasks[ready]["labels"]

    await writer.health(unchecked, True)  # turns ready: listed
    await writer.status(staging, "RUNNING")  # running, but its check has not passed: not listed
    body = await until_targets(s, lambda b: len(b) == 5, "the task whose check passed listed")
    assert unchecked in {t["labels"].get("task") for t in body}
    assert staging not in {t["labels"].get("task") for t in body}

    await writer.kill_requested(ready)  # being killed: not ready any more
    await writer.status(custom, "FAILED")
    body = await until_targets(s, lambda b: len(b) == 3, "the killed and the failed task gone")
    assert {t["labels"].get("task") for t in body if t["labels"]["bay_kind"] == "task"} == {unchecked}
