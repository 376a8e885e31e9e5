"""An append whose acknowledgement never came may be stored: the 503 says so (not "nothing was
written"), and the retry with the same key is answered once, whichever way it went."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import NatsProcess
from tests.integration.gateway_harness import start_stack


async def test_a_timed_out_append_says_it_may_be_stored(
    fresh_stream: str, nats_server: NatsProcess, tmp_path: Path
) -> None:
    # the gateway waits longer than the registry's append timeout (2 s), so the registry's word arrives
    stack = await start_stack(fresh_stream, tmp_path, registry_timeout_seconds=8.0)
    assert nats_server.proc is not None
    pid = nats_server.proc.pid
    try:
        c, op = stack.client, stack.operator
        made = await c.post("/v1/groups", json={"name": "web", "cmd": "sleep 1"}, headers=op)
        assert made.status_code == 201, made.text
        headers = {**op, "Idempotency-Key": "scale-web-5"}
        os.kill(pid, signal.SIGSTOP)  # NATS stalls: the publish is sent, its ack never comes
        try:
            resp = await c.post("/v1/groups/web/scale", json={"instances": 5}, headers=headers)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert resp.status_code == 503, resp.text
        body = resp.json()
        text = f"{body['message']} {body['hint']}"
        assert "nothing was written" not in text
        # what the registry knew: the ack did not come (usually), or it came and the fold lagged
        assert "may or may not be stored" in body["message"] or "is stored" in body["message"], text
        assert "same idempotency key" in body["hint"]

        retried = await c.post("/v1/groups/web/scale", json={"instances": 5}, headers=headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["group"]["spec"]["instances"] == 5
        history = (await c.get("/v1/groups/web/history", headers=op)).json()["events"]
        assert [e["type"] for e in history] == ["GroupCreated", "GroupScaled"]  # once, whichever way
    finally:
        await stack.stop()
