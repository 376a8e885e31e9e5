"""``GET /v1/alerts`` and ``bay alerts`` in front of a real Alertmanager (Debian's
prometheus-alertmanager, run by the test), alerts posted to it over its own API v2 as Prometheus
posts them: what fires is listed in Bay's shape, the most severe first, silenced alerts left out;
without an Alertmanager the answer says so; a stopped or stalled one is a quick 503 (exit 5)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.natsserver import free_port
from services.cli.stack.monitoring import ALERTMANAGER_BINARIES, Intervals, alertmanager_config, render
from tests.integration.gateway_harness import Stack, serve, start_stack
from tests.poll import poll_until

BINARY = next((b for name in ALERTMANAGER_BINARIES if (b := shutil.which(name))), None)
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is installed by `make setup`"),
]
BAY = str(Path(sys.executable).parent / "bay")
DEADLINE = 15.0


@contextlib.asynccontextmanager
async def alertmanager(tmp_path: Path) -> AsyncIterator[str]:
    """A real Alertmanager on a free port (no receiver, no gossip); its URL once it is ready."""
    assert BINARY is not None
    config = tmp_path / "alertmanager.yml"
    config.write_text(render(alertmanager_config(webhook_url="", intervals=Intervals())))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        BINARY,
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:

            async def ready() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get("/-/ready")).status_code == 200
                return False

            await poll_until(ready, "Alertmanager ready", DEADLINE)
        yield url
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


def alert(name: str, severity: str, summary: str, started: datetime, **labels: str) -> dict[str, Any]:
    """An alert as Prometheus posts it to Alertmanager's API v2."""
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": summary, "description": f"about {name}"},
        "startsAt": started.isoformat(),
        "endsAt": (started + timedelta(hours=1)).isoformat(),
    }


async def cli(stack: Stack, url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
    env |= {"BAY_GATEWAY_URL": url, "BAY_TOKEN": stack.registry.viewer_token, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        BAY, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), " ".join(err.decode().split())


async def test_firing_alerts_are_listed_most_severe_first_without_silenced_ones(
    fresh_stream: str, tmp_path: Path
) -> None:
    async with alertmanager(tmp_path) as am_url:
        started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        posted = [
            alert(
                "BayGroupBelowDesired",
                "warning",
                "Group web is 2 short",
                started,
                group="web",
                cluster="local",
            ),
            alert("BayDnsDown", "critical", "The DNS service is down", started, instance="127.0.0.1:9315"),
            alert("BayFoldBehind", "warning", "hushed", started, service="dns"),
        ]
        async with httpx.AsyncClient(base_url=am_url, timeout=5) as am:
            assert (await am.post("/api/v2/alerts", json=posted)).status_code == 200
            silence = {
                "matchers": [{"name": "alertname", "value": "BayFoldBehind", "isRegex": False}],
                "startsAt": started.isoformat(),
                "endsAt": (started + timedelta(hours=2)).isoformat(),
                "createdBy": "test",
                "comment": "known",
            }
            assert (await am.post("/api/v2/silences", json=silence)).status_code == 200

        stack = await start_stack(fresh_stream, tmp_path, alertmanager_url=am_url)
        served = await serve(stack.gateway)
        try:

            async def listed() -> dict[str, Any] | None:
                resp = await stack.client.get("/v1/alerts", headers=stack.viewer)
                assert resp.status_code == 200, resp.text
                body: dict[str, Any] = resp.json()
                return body if len(body["alerts"]) == 2 else None

            body = await poll_until(listed, "two alerts listed (the silenced one left out)", DEADLINE)
            assert body["configured"] is True
            dns, web = body["alerts"]
            assert dns["name"] == "BayDnsDown" and dns["severity"] == "critical" and dns["group"] is None
            assert web == {
                "name": "BayGroupBelowDesired",
                "severity": "warning",
                "group": "web",
                "summary": "Group web is 2 short",
                "description": "about BayGroupBelowDesired",
                "state": "active",
                "starts_at": web["starts_at"],
                "labels": {
                    "alertname": "BayGroupBelowDesired",
                    "severity": "warning",
                    "group": "web",
                    "cluster": "local",
                },
            }
            assert datetime.fromisoformat(web["starts_at"].replace("Z", "+00:00")) == started
            # a token is needed (the API refuses anonymous reads here)
            assert (await stack.client.get("/v1/alerts")).status_code == 401

            code, out, err = await cli(stack, served.url, "alerts")
            assert code == 0, err
            lines = out.splitlines()
            assert lines[0].split() == ["alert", "group", "severity", "since", "summary"]
            assert lines[1].split()[:3] == ["BayDnsDown", "-", "critical"]
            assert lines[2].split()[:3] == ["BayGroupBelowDesired", "web", "warning"]
            assert started.strftime("%Y-%m-%d %H:%M:%S") in lines[2] and "Group web is 2 short" in lines[2]
            assert "hushed" not in out
            code, out, err = await cli(stack, served.url, "alerts", "-o", "json")
            assert code == 0, err
            assert '"BayGroupBelowDesired"' in out and '"configured": true' in out
        finally:
            await served.stop()
            await stack.stop()


async def test_without_an_alertmanager_the_answer_says_so(fresh_stream: str, tmp_path: Path) -> None:
    stack = await start_stack(fresh_stream, tmp_path)
    served = await serve(stack.gateway)
    try:
        resp = await stack.client.get("/v1/alerts", headers=stack.viewer)
        assert resp.status_code == 200 and resp.json() == {"configured": False, "alerts": []}
        code, out, err = await cli(stack, served.url, "alerts")
        assert code == 0 and out == ""
        assert "no Alertmanager" in err and "BAY_ALERTMANAGER_URL" in err
    finally:
        await served.stop()
        await stack.stop()


@contextlib.asynccontextmanager
async def stalled_server() -> AsyncIterator[str]:
    """Accepts connections, reads what is sent, and never answers (a hung Alertmanager)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for w in held:
            w.close()
        server.close()


@pytest.mark.parametrize("how", ["stopped", "stalled"])
async def test_an_alertmanager_down_or_hung_is_a_quick_503(
    fresh_stream: str, tmp_path: Path, how: str
) -> None:
    async with contextlib.AsyncExitStack() as exits:
        url = (
            f"http://127.0.0.1:{free_port()}"
            if how == "stopped"
            else await exits.enter_async_context(stalled_server())
        )
        stack = await start_stack(
            fresh_stream, tmp_path, alertmanager_url=url, alertmanager_timeout_seconds=1.0
        )
        served = await serve(stack.gateway)
        try:
            began = time.monotonic()
            resp = await stack.client.get("/v1/alerts", headers=stack.viewer)
            assert time.monotonic() - began < 3.0
            assert resp.status_code == 503, resp.text
            body = resp.json()
            assert body["error"] == "unavailable"
            assert url in body["message"] and "BAY_ALERTMANAGER_URL" in body["hint"]
            began = time.monotonic()
            code, _, err = await cli(stack, served.url, "alerts")
            assert code == 5 and "Alertmanager" in err and url in err
            assert time.monotonic() - began < 10.0
        finally:
            await served.stop()
            await stack.stop()
