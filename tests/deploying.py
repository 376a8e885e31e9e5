"""Driving deployments through the gateway as a user's tooling does, for the deployment proofs and
benchmarks: builds registered from artifacts, a group of the README's example task, the deployment
followed on its server-sent stream and the group's ready count watched on its status stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.builds import HTTP_SERVER, make_artifact


async def register_build(
    http: httpx.AsyncClient, artifacts: Path, build_id: str, cmd: str = HTTP_SERVER
) -> None:
    uri, sha256 = make_artifact(artifacts, build_id)
    body = {
        "id": build_id,
        "artifact": {"uri": uri, "sha256": sha256, "extract": True},
        "cmd": cmd,
        "commit": f"c-{build_id}",
    }
    resp = await http.post("/v1/builds", json=body)
    assert resp.status_code in (200, 201), resp.text


def group_spec(
    name: str, build: str, instances: int, cluster: str = "local", *, check_every: float = 1.0, **extra: Any
) -> dict[str, Any]:
    """The README's example task from ``build``, health-checked over HTTP every ``check_every``
    seconds with as long to answer (a check that fails makes the task unready at once, as Marathon
    does: on a loaded machine a shorter timeout makes ready tasks flap)."""
    return {
        "name": name,
        "cluster": cluster,
        "build": build,
        "instances": instances,
        "resources": {"cpus": 0.01, "mem": 16},
        "ports": [{"name": "http"}],
        "health_check": {
            "protocol": "http",
            "path": "/build.txt",
            "port_name": "http",
            "grace_period_seconds": 30,
            "interval_seconds": check_every,
            "timeout_seconds": check_every,
            "max_consecutive_failures": 3,
        },
        **extra,
    }


class Unanswered(AssertionError):
    """A stream the gateway refused (e.g. 503: the scheduler did not answer in time)."""


async def sse(http: httpx.AsyncClient, path: str) -> AsyncIterator[dict[str, Any]]:
    """The ``data`` of each server-sent event of ``path``."""
    async with http.stream("GET", path, timeout=httpx.Timeout(10.0, read=None)) as resp:
        if resp.status_code != 200:
            raise Unanswered(f"{path}: {resp.status_code} {(await resp.aread())[:300]!r}")
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:])


@dataclass
class ReadyWatch:
    """The group's status on its stream: the lowest ready count seen since ``arm()``."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    min_ready: int | None = None
    armed: bool = False
    reopened: int = 0  # streams opened again after a 503 or a broken connection
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def arm(self) -> None:
        self.armed = True
        self.min_ready = self.statuses[-1]["ready"] if self.statuses else None

    async def follow(self, http: httpx.AsyncClient, group: str) -> None:
        """Rides out a scheduler that does not answer in time (busy launching a hundred tasks, the
        gateway says 503): the stream is opened again, as ``bay scale --wait`` does."""
        while True:
            try:
                async for status in sse(http, f"/v1/groups/{group}/status/stream"):
                    self.statuses.append(status)
                    if self.armed:
                        ready = status["ready"]
                        self.min_ready = ready if self.min_ready is None else min(self.min_ready, ready)
                    self.changed.set()
            except (Unanswered, httpx.HTTPError):
                self.reopened += 1
                await asyncio.sleep(0.2)  # the retry's pace, not a wait for an event

    async def until(self, ok: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        async def scan() -> dict[str, Any]:
            while True:
                if self.statuses and ok(self.statuses[-1]):
                    return self.statuses[-1]
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            last = self.statuses[-1] if self.statuses else None
            raise AssertionError(f"status not reached within {timeout}s; last: {last}") from None


@contextlib.asynccontextmanager
async def watching(http: httpx.AsyncClient, group: str) -> AsyncIterator[ReadyWatch]:
    watch = ReadyWatch()
    task = asyncio.create_task(watch.follow(http, group))
    try:
        await watch.until(lambda s: True, 10)
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def deployment_until(
    http: httpx.AsyncClient, group: str, ok: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """Follow the group's deployment stream until ``ok`` holds (or the deployment ends: then it
    must hold for the last one)."""
    last: dict[str, Any] | None = None

    async def scan() -> dict[str, Any]:
        nonlocal last
        while True:
            try:
                async for dep in sse(http, f"/v1/groups/{group}/deployment/stream"):
                    last = dep
                    if ok(dep):
                        return dep
                    if dep["ended"]:
                        raise AssertionError(f"the deployment ended otherwise: {dep}")
            except (Unanswered, httpx.HTTPError):
                await asyncio.sleep(0.2)  # the retry's pace, not a wait for an event

    try:
        return await asyncio.wait_for(scan(), timeout)
    except TimeoutError:
        raise AssertionError(f"deployment not there within {timeout}s; last: {last}") from None


async def deploy(http: httpx.AsyncClient, group: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Start a deployment; the reply's deployment and when it was sent (monotonic)."""
    began = time.monotonic()
    resp = await http.post(f"/v1/groups/{group}/deploy", json=body)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["deployment"], began


async def tasks_of(http: httpx.AsyncClient, group: str) -> list[dict[str, Any]]:
    resp = await http.get(f"/v1/groups/{group}/tasks")
    assert resp.status_code == 200, resp.text
    return list(resp.json()["tasks"])
