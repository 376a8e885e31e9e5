"""NATS goes away under ``bay up`` and comes back: mutations fail fast with 503, then work again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx

from libs.natsserver import free_port, start_nats
from tests.e2e.harness import running_bay


async def wait_health(http: httpx.AsyncClient, *, nats: bool, timeout: float = 20.0) -> None:
    """Until /healthz reports NATS as wanted: every round is a real request, within a deadline."""

    async def poll() -> None:
        while (await http.get("/healthz")).json().get("nats") is not nats:
            pass

    await asyncio.wait_for(poll(), timeout)


async def test_mutations_fail_fast_while_nats_is_down_and_work_after(tmp_path: Path) -> None:
    store, port = tmp_path / "nats", free_port()
    nats_proc = start_nats(store, port, log_file=tmp_path / "nats.log")
    try:
        async with running_bay(tmp_path, nats_url=f"nats://127.0.0.1:{port}") as bay:
            assert "nats" not in bay.pids(), "with BAY_NATS_URL set, bay up starts no nats-server"
            async with bay.http() as http:
                created = await http.post("/v1/groups", json={"name": "e2e-nats", "cmd": "sleep 600"})
                assert created.status_code == 201, created.text

                nats_proc.terminate()
                nats_proc.wait(timeout=10)
                began = time.monotonic()
                resp = await http.post(
                    "/v1/groups/e2e-nats/scale",
                    json={"instances": 2},
                    headers={"Idempotency-Key": "e2e-nats-scale-2"},
                )
                took = time.monotonic() - began
                assert resp.status_code == 503, resp.text
                assert took < 3.0, f"the failure took {took:.1f}s"
                body = resp.json()
                assert body["message"] and body["hint"]
                code, _, err = await bay.cli("scale", "e2e-nats", "3")
                assert code == 5 and "hint:" in err

                nats_proc = start_nats(store, port, log_file=tmp_path / "nats.log")
                await wait_health(http, nats=True)

                async def until_accepted() -> httpx.Response:
                    while True:  # the registry reconnects on its own schedule: each round a real request
                        r = await http.post(
                            "/v1/groups/e2e-nats/scale",
                            json={"instances": 2},
                            headers={"Idempotency-Key": "e2e-nats-scale-2"},
                        )
                        if r.status_code != 503:
                            return r

                resp = await asyncio.wait_for(until_accepted(), 20)
                assert resp.status_code == 200, resp.text
                assert (await http.get("/v1/groups/e2e-nats")).json()["spec"]["instances"] == 2
                restarts = [line for line in bay.lines if line.startswith("bay: ") and "restarted" in line]
                assert not restarts, "the services must reconnect by themselves, not be restarted"
    finally:
        with contextlib.suppress(Exception):
            nats_proc.terminate()
            nats_proc.wait(timeout=10)
