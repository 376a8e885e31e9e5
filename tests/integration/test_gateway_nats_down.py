"""With NATS down, the gateway answers 503 (commands and event streams) and says so in /healthz."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import NatsProcess
from tests.integration.gateway_harness import start_stack


async def test_nats_down_is_a_quick_503(fresh_stream: str, nats_server: NatsProcess, tmp_path: Path) -> None:
    stack = await start_stack(fresh_stream, tmp_path)
    try:
        made = await stack.client.post(
            "/v1/groups", json={"name": "web", "cmd": "sleep 1"}, headers=stack.operator
        )
        assert made.status_code == 201
        nats_server.stop()
        limit = stack.gateway.settings.registry_timeout_seconds + 1
        for method, path, body in [
            ("POST", "/v1/groups/web/scale", {"instances": 2}),
            ("POST", "/v1/groups", {"name": "api", "cmd": "sleep 1"}),
            ("GET", "/v1/events/stream", None),
        ]:
            started = time.monotonic()
            headers = stack.operator if method == "POST" else stack.viewer
            resp = await stack.client.request(method, path, json=body, headers=headers)
            assert time.monotonic() - started < limit
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "unavailable" and "NATS" in resp.json()["message"]
        health = await stack.client.get("/healthz")
        body = health.json()
        assert body.pop("schedulers").keys() == {"local"}
        assert body.pop("dns") is False  # reported too; this stack runs no DNS service
        assert body.pop("deployer") is False  # and no deployer
        body.pop("folds")
        # degraded while NATS may come back; unhealthy (503), the registry NOT_SERVING, once it stays down
        assert body["nats"] is False and body["status"] in ("degraded", "unhealthy")
    finally:
        nats_server.start()
        await stack.stop()
