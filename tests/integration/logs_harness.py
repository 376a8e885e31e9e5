"""A registry, a real local scheduler process and a served gateway, for the log tests: REST on the
real socket (streams go through uvicorn) and the real ``bay`` command."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from libs.natsserver import free_port
from tests.integration.gateway_harness import ServedGateway, Stack, serve, start_stack
from tests.integration.scheduler_harness import SchedulerProcess, kill_tasks
from tests.poll import poll_until

DEADLINE = 20.0
SMALL = {"cpus": 0.1, "mem": 16}
BAY = str(Path(sys.executable).parent / "bay")


@dataclass
class LogStack:
    stack: Stack
    sched: SchedulerProcess
    served: ServedGateway
    http: httpx.AsyncClient
    data_dir: Path

    @property
    def op(self) -> dict[str, str]:
        return self.stack.operator

    @property
    def viewer(self) -> dict[str, str]:
        return self.stack.viewer

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.viewer)

    async def create(self, **spec: Any) -> None:
        resp = await self.http.post("/v1/groups", json={"resources": SMALL, **spec}, headers=self.op)
        assert resp.status_code == 201, resp.text

    async def running(self, group: str, count: int) -> list[str]:
        """The ids of the group's RUNNING tasks, once there are ``count`` of them."""

        async def ids() -> list[str] | None:
            resp = await self.get(f"/v1/groups/{group}/tasks")
            found = [t["id"] for t in resp.json().get("tasks", []) if t["state"] == "RUNNING"]
            return found if len(found) == count else None

        try:
            found: list[str] = await poll_until(ids, f"{count} running tasks of {group}", DEADLINE)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.sched.log_tail()}") from None
        return found

    def sandbox(self, task_id: str) -> Path:
        return self.data_dir / "local" / "local" / "sandboxes" / task_id

    async def bay(self, *args: str) -> tuple[int, str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
        env |= {
            "BAY_GATEWAY_URL": self.served.url,
            "BAY_TOKEN": self.stack.registry.token,
            "BAY_DATA_DIR": str(self.data_dir / "cli"),
        }
        proc = await asyncio.create_subprocess_exec(
            BAY, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), " ".join(err.decode().split())


async def log_stack(nats_url: str, data_dir: Path, **sched_env: str) -> AsyncIterator[LogStack]:
    port = free_port()
    stack = await start_stack(
        nats_url, data_dir, schedulers={"local": f"127.0.0.1:{port}"}, scheduler_timeout_seconds=1.0
    )
    env = {"BAY_LOCAL_PORT_BEGIN": "25200", "BAY_LOCAL_PORT_END": "25249", **sched_env}
    sched = SchedulerProcess(stack.registry, nats_url, data_dir, port=port, extra_env=env)
    served: ServedGateway | None = None
    try:
        await sched.start()
        served = await serve(stack.gateway)
        async with httpx.AsyncClient(base_url=served.url, timeout=DEADLINE) as http:
            yield LogStack(stack, sched, served, http, data_dir)
    finally:
        if served is not None:
            await served.stop()
        await sched.stop()
        await stack.stop()
        kill_tasks(data_dir)
