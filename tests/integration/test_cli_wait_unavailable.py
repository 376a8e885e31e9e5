"""``bay scale --wait`` rides out a scheduler that is unavailable for a while (issue 10): the real
CLI against a real gateway, with the cluster's real scheduler stopped when the wait begins and
started again while it waits. Before, the first 503 ended the wait ("start the scheduler")."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from libs.natsserver import free_port
from tests.integration.gateway_harness import serve, start_stack
from tests.integration.scheduler_harness import SchedulerProcess, kill_tasks
from tests.poll import poll_until

pytestmark = pytest.mark.timeout(150)

BAY = str(Path(sys.executable).parent / "bay")
PORTS = {"BAY_LOCAL_PORT_BEGIN": "19850", "BAY_LOCAL_PORT_END": "19899"}
STATUS_503 = re.compile(
    r'^bay_gateway_requests_total\{method="GET",route="/v1/groups/\{name\}/status(/stream)?",status="503"\} '
    r"([0-9.]+)$",
    re.M,
)


async def test_wait_rides_out_a_scheduler_stopped_and_started_again(
    fresh_stream: str, tmp_path: Path
) -> None:
    port = free_port()
    stack = await start_stack(
        fresh_stream, tmp_path, schedulers={"local": f"127.0.0.1:{port}"}, scheduler_timeout_seconds=1.0
    )
    sched = SchedulerProcess(stack.registry, fresh_stream, tmp_path, port=port, extra_env=PORTS)
    served = await serve(stack.gateway)
    try:
        await sched.start()
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            made = await http.post(
                "/v1/groups", json={"name": "web", "cmd": "sleep 600", "instances": 0}, headers=stack.operator
            )
            assert made.status_code == 201, made.text
            await sched.stop()  # unavailable when the wait begins

            env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
            env |= {"BAY_GATEWAY_URL": served.url, "BAY_TOKEN": stack.registry.token, "COLUMNS": "200"}
            env["BAY_DATA_DIR"] = str(tmp_path / "cli")
            cli = await asyncio.create_subprocess_exec(
                BAY, "scale", "web", "2", "--wait", "--timeout", "60",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip

            async def refused() -> bool:  # the CLI has met the unavailable status (the gateway counts it)
                text = (await http.get("/metrics")).text
                return any(float(m.group(2)) >= 1 for m in STATUS_503.finditer(text))

            await poll_until(refused, "the wait meeting a 503", 30)
            assert cli.returncode is None, "the wait gave up at the first 503"
            await sched.start()  # back while the CLI waits
            out, err = await asyncio.wait_for(cli.communicate(), 90)
            said = out.decode() + err.decode()
            assert cli.returncode == 0, said
            assert "group web: 2/2 ready" in out.decode(), said
    finally:
        await served.stop()
        await sched.stop()
        kill_tasks(tmp_path)
        await stack.stop()
