"""The gateway's task endpoints over a real local scheduler process and a real registry: tasks,
status (and its stream), one task, logs (tail and follow), kill; and their failures (404, 403, 503)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from libs.natsserver import free_port
from tests.integration.gateway_harness import (
    ServedGateway,
    Stack,
    serve,
    sse_messages,
    start_gateway,
    start_stack,
)
from tests.integration.scheduler_harness import SchedulerProcess, kill_tasks, task_readable_dir

DEADLINE = 15.0
SMALL = {"cpus": 0.1, "mem": 16}
PORTS = {"BAY_LOCAL_PORT_BEGIN": "19400", "BAY_LOCAL_PORT_END": "19449"}  # below the ephemeral range


@dataclass
class Setup:
    stack: Stack
    sched: SchedulerProcess
    served: ServedGateway
    http: httpx.AsyncClient  # on the real socket (streams go through uvicorn)

    @property
    def op(self) -> dict[str, str]:
        return self.stack.operator

    @property
    def viewer(self) -> dict[str, str]:
        return self.stack.viewer

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.viewer)

    async def until_status(self, group: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Follow ``/status/stream`` until ``ok`` holds for a status; fails with the last one."""
        last: dict[str, Any] = {}

        async def watch() -> dict[str, Any]:
            nonlocal last
            async with self.http.stream("GET", f"/v1/groups/{group}/status/stream", headers=self.viewer) as r:
                assert r.status_code == 200, await r.aread()
                async for msg in sse_messages(r):
                    if msg.event == "status":
                        last = json.loads(msg.data)
                        if ok(last):
                            return last
            raise AssertionError("the status stream ended")

        try:
            return await asyncio.wait_for(watch(), DEADLINE)
        except TimeoutError:
            raise AssertionError(
                f"{group}: not reached; last status {last}\n{self.sched.log_tail()}"
            ) from None

    async def tasks(self, group: str, **params: Any) -> dict[str, Any]:
        resp = await self.get(f"/v1/groups/{group}/tasks", **params)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


@pytest_asyncio.fixture
async def setup(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Setup]:
    port = free_port()
    stack = await start_stack(
        fresh_stream,
        tmp_path,
        schedulers={"local": f"127.0.0.1:{port}"},
        scheduler_timeout_seconds=1.0,
        sse_heartbeat_seconds=0.5,
    )
    sched = SchedulerProcess(stack.registry, fresh_stream, tmp_path, port=port, extra_env=PORTS)
    served: ServedGateway | None = None
    try:
        await sched.start()
        served = await serve(stack.gateway)
        async with httpx.AsyncClient(base_url=served.url, timeout=DEADLINE) as http:
            yield Setup(stack, sched, served, http)
    finally:
        if served is not None:
            await served.stop()
        await sched.stop()
        await stack.stop()
        kill_tasks(tmp_path)


async def create(s: Setup, **spec: Any) -> None:
    resp = await s.http.post("/v1/groups", json={"resources": SMALL, **spec}, headers=s.op)
    assert resp.status_code == 201, resp.text


async def read_until(lines: AsyncIterator[str], want: str, seen: list[str]) -> None:
    async def scan() -> None:
        async for line in lines:
            seen.append(line)
            if line == want:
                return
        raise AssertionError(f"the log ended before {want!r}: {seen}")

    await asyncio.wait_for(scan(), DEADLINE)


async def test_tasks_status_logs_and_kill_through_the_gateway(setup: Setup, tmp_path: Path) -> None:
    s = setup
    flag = task_readable_dir() / "print-more"  # tasks run as uids of their own: not in tmp_path
    await create(
        s,
        name="web",
        instances=2,
        cmd=f"echo hello; echo oops >&2; while [ ! -e {flag} ]; do sleep 0.02; done; "
        "echo after the flag; exec sleep 600",
    )
    status = await s.until_status("web", lambda st: st["ready"] == 2)
    assert status["desired"] == 2 and status["cluster"] == "local" and status["known"]
    assert status["pending"]["count"] == 0 and status["pending"]["summary"] == ""

    body = await s.tasks("web")
    assert (body["group"], body["cluster"]) == ("web", "local")
    assert body["status"]["ready"] == 2
    tasks = body["tasks"]
    assert len(tasks) == 2 and all(t["state"] == "RUNNING" and t["ready"] for t in tasks)
    assert all(t["id"].startswith("web.") and t["hostname"] == "bay-test-host" for t in tasks)
    assert tasks[0]["healthy"] is None and tasks[0]["started_at"] is not None
    assert (await s.tasks("web", state="KILLED"))["tasks"] == []
    bad_state = await s.get("/v1/groups/web/tasks", state="SLEEPY")
    assert bad_state.status_code == 422 and bad_state.json()["violations"][0]["field"] == "state"

    plain = await s.get("/v1/groups/web/status")
    assert plain.status_code == 200 and plain.json()["ready"] == 2
    first = tasks[0]["id"]
    one = await s.get(f"/v1/tasks/{first}")
    assert one.status_code == 200 and one.json()["id"] == first and one.json()["cluster"] == "local"

    # tail: what was printed; follow: also what is printed after the request started
    logs = await s.get(f"/v1/tasks/{first}/logs", tail=10)
    assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/plain")
    assert logs.text == "hello\n"
    seen: list[str] = []
    params = {"follow": "true", "tail": "5"}
    async with s.http.stream("GET", f"/v1/tasks/{first}/logs", params=params, headers=s.viewer) as r:
        assert r.status_code == 200
        lines = r.aiter_lines()
        await read_until(lines, "hello", seen)
        flag.touch()
        await read_until(lines, "after the flag", seen)
    assert seen == ["hello", "after the flag"]
    err = await s.get(f"/v1/tasks/{first}/logs", stream="stderr")
    assert err.text == "oops\n"

    # kill: the task goes, a replacement comes, the count stays
    killed = await s.http.post(f"/v1/tasks/{first}/kill", headers=s.op)
    assert killed.status_code == 200, killed.text
    assert killed.json()["kill_reason"].startswith("operator")
    await s.until_status("web", lambda st: st["ready"] == 2 and st["killing"] == 0 and st["staged"] == 0)
    now = {t["id"]: t for t in (await s.tasks("web", all="true"))["tasks"]}
    assert now[first]["state"] == "KILLED"
    running = [t for t in now.values() if t["state"] == "RUNNING"]
    assert len(running) == 2 and first not in {t["id"] for t in running}
    again = await s.http.post(f"/v1/tasks/{first}/kill", headers=s.op)  # gone already: nothing to do
    assert again.status_code == 200 and again.json()["state"] == "KILLED"


async def test_task_errors_name_what_is_wrong(setup: Setup) -> None:
    s = setup
    await create(s, name="api", cmd="exec sleep 600")
    await s.until_status("api", lambda st: st["ready"] == 1)
    (task,) = (await s.tasks("api"))["tasks"]

    for path in ("/v1/groups/nope/tasks", "/v1/groups/nope/status", "/v1/groups/nope/status/stream"):
        resp = await s.get(path)
        assert resp.status_code == 404 and "nope" in resp.json()["message"], path
    for path in ("/v1/tasks/api.0000", "/v1/tasks/api.0000/logs", "/v1/tasks/gone.0000", "/v1/tasks/x"):
        resp = await s.get(path)
        assert resp.status_code == 404, (path, resp.text)
        assert "bay tasks" in resp.json()["hint"]
    missing_kill = await s.http.post("/v1/tasks/api.0000/kill", headers=s.op)
    assert missing_kill.status_code == 404

    # with a second cluster whose scheduler is down: a task of a deleted group might run there
    settings = s.stack.gateway.settings
    two = await start_gateway(
        settings.nats_url,
        settings.data_dir,
        s.stack.registry.port,
        schedulers={**settings.schedulers, "far": f"127.0.0.1:{free_port()}"},
        scheduler_timeout_seconds=1.0,
    )
    try:
        unsure = await two.client.get("/v1/tasks/gone.0000", headers=s.viewer)
        assert unsure.status_code == 503 and "far" in unsure.json()["message"], unsure.text
        known = await two.client.get(f"/v1/tasks/{task['id']}", headers=s.viewer)
        assert known.status_code == 200  # the owner answered: the others are not asked
        typo = await two.client.get("/v1/tasks/api.0000", headers=s.viewer)
        assert typo.status_code == 404  # the owner's group exists and its scheduler answered
        health = (await two.client.get("/healthz")).json()
        assert health["schedulers"] == {"local": True, "far": False} and health["status"] == "ok"
    finally:
        await two.stop()

    doc = (await s.http.get("/openapi.json")).json()
    paths = doc["paths"]
    assert "get" in paths["/v1/groups/{name}/tasks"] and "post" in paths["/v1/tasks/{task_id}/kill"]
    assert "text/plain" in paths["/v1/tasks/{task_id}/logs"]["get"]["responses"]["200"]["content"]
    stream_doc = paths["/v1/groups/{name}/status/stream"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in stream_doc
    assert {"state", "all"} <= {p["name"] for p in paths["/v1/groups/{name}/tasks"]["get"]["parameters"]}
    assert {"Task", "GroupStatus", "GroupTasks", "Pending"} <= set(doc["components"]["schemas"])

    forbidden = await s.http.post(f"/v1/tasks/{task['id']}/kill", headers=s.viewer)
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "permission_denied"
    anonymous = await s.http.post(f"/v1/tasks/{task['id']}/kill")
    assert anonymous.status_code == 401

    # a cluster the gateway has no scheduler for
    registered = await s.http.post("/v1/clusters", json={"name": "mars", "backend": "local"}, headers=s.op)
    assert registered.status_code == 201
    await create(s, name="rover", cmd="sleep 1", cluster="mars")
    resp = await s.get("/v1/groups/rover/tasks")
    assert resp.status_code == 503 and "mars" in resp.json()["message"]
    assert "BAY_SCHEDULERS" in resp.json()["hint"]

    # the scheduler goes down: a quick 503 naming the cluster, never a hang
    await s.sched.stop()
    for path in (
        "/v1/groups/api/tasks",
        "/v1/groups/api/status",
        "/v1/groups/api/status/stream",
        f"/v1/tasks/{task['id']}",
        f"/v1/tasks/{task['id']}/logs",
    ):
        began = time.monotonic()
        resp = await s.get(path)
        took = time.monotonic() - began
        assert resp.status_code == 503, (path, resp.text)
        body = resp.json()
        assert "cluster 'local'" in body["message"] and "scheduler" in body["hint"], body
        assert took < 1.5, f"{path} took {took:.2f}s"
    killed = await s.http.post(f"/v1/tasks/{task['id']}/kill", headers=s.op)
    assert killed.status_code == 503
    health = await s.http.get("/healthz")
    assert health.status_code == 200 and health.json()["schedulers"]["local"] is False
    assert health.json()["status"] == "ok"  # the registry and NATS are fine
