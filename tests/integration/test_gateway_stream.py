"""The gateway on real sockets: server-sent events through uvicorn, the audit query, the process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest_asyncio
from nats.aio.msg import Msg

from libs.natsconn import connect
from libs.natsserver import free_port
from services.gateway.audit.sqlstore import SqlAuditStore
from services.gateway.audit.writer import PROGRESS_SUBJECT, AuditWriter
from tests import natsauth
from tests.integration.gateway_harness import SseMessage, Stack, serve, sse_messages, start_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    s = await start_stack(fresh_stream, tmp_path, sse_heartbeat_seconds=0.3)
    yield s
    await s.stop()


async def next_event(messages: AsyncIterator[SseMessage]) -> SseMessage:
    """The next block that is an event (keep-alive comments skipped), within 5 s."""
    while True:
        msg = await asyncio.wait_for(anext(messages), 5)
        if msg.event is not None:
            return msg


async def test_sse_delivers_events_and_resumes_after_last_event_id(stack: Stack) -> None:
    served = await serve(stack.gateway)
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            async with http.stream("GET", "/v1/events/stream", headers=stack.viewer) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                messages = sse_messages(resp)
                opening = await asyncio.wait_for(anext(messages), 5)
                # without from or Last-Event-ID the stream starts after what exists now
                assert opening.comments == [f"from sequence {await stack.last_sequence() + 1}"]
                created = await http.post(
                    "/v1/groups", json={"name": "web", "cmd": "sleep 1000"}, headers=stack.operator
                )
                assert created.status_code == 201
                seen = await next_event(messages)
                assert seen.event == "GroupCreated" and seen.id == str(created.json()["sequence"])
                data = json.loads(seen.data)
                assert data["aggregate_id"] == "web" and data["data"]["spec"]["cmd"] == "sleep 1000"
                # with nothing new, the stream says it is alive
                quiet = await asyncio.wait_for(anext(messages), 5)
                assert quiet.event is None and quiet.comments == ["keep-alive"]

            # two changes while no one listens
            scaled = await http.post("/v1/groups/web/scale", json={"instances": 3}, headers=stack.operator)
            updated = await http.put("/v1/groups/web", json={"cmd": "sleep 2000"}, headers=stack.operator)
            headers = {**stack.viewer, "Last-Event-ID": seen.id}
            async with http.stream("GET", "/v1/events/stream", headers=headers) as resp:
                messages = sse_messages(resp)
                opening = await asyncio.wait_for(anext(messages), 5)
                assert opening.comments == [f"from sequence {int(seen.id) + 1}"]
                got = [await next_event(messages), await next_event(messages)]
                assert [(m.id, m.event) for m in got] == [
                    (str(scaled.json()["sequence"]), "GroupScaled"),
                    (str(updated.json()["sequence"]), "GroupUpdated"),
                ]
                after = await asyncio.wait_for(anext(messages), 5)
                assert after.event is None and after.comments == ["keep-alive"]  # exactly those two

            # from= and a subject filter: the whole history of one group
            params = {"from": "0", "subject": "group.web"}
            async with http.stream("GET", "/v1/events/stream", params=params, headers=stack.viewer) as resp:
                messages = sse_messages(resp)
                types = [(await next_event(messages)).event for _ in range(3)]
                assert types == ["GroupCreated", "GroupScaled", "GroupUpdated"]

            # an open stream ends when the gateway stops, so stopping does not wait for clients
            async with http.stream("GET", "/v1/events/stream", headers=stack.viewer) as resp:
                messages = sse_messages(resp)
                await asyncio.wait_for(anext(messages), 5)
                await served.stop()
                rest = [m async for m in messages if m.event is not None]
                assert rest == []
    finally:
        await served.stop()


async def test_sse_needs_a_token_and_checks_its_parameters(stack: Stack) -> None:
    c = stack.client
    assert (await c.get("/v1/events/stream")).status_code == 401
    bad_id = await c.get("/v1/events/stream", headers={**stack.viewer, "Last-Event-ID": "abc"})
    assert bad_id.status_code == 422 and bad_id.json()["violations"][0]["field"] == "Last-Event-ID"
    bad_subject = await c.get("/v1/events/stream", params={"subject": "group.>.x"}, headers=stack.viewer)
    assert bad_subject.status_code == 422 and bad_subject.json()["violations"][0]["field"] == "subject"


async def test_events_query_reads_the_audit_table(stack: Stack, fresh_stream: str) -> None:
    c, op = stack.client, stack.operator
    await c.post("/v1/groups", json={"name": "web", "cmd": "sleep 1000"}, headers=op)
    await c.post("/v1/groups", json={"name": "api", "cmd": "sleep 1000"}, headers=op)
    for n in (2, 3, 4):
        await c.post("/v1/groups/web/scale", json={"instances": n}, headers=op)
    last = await stack.last_sequence()

    # the audit writer (its own process in production) fills the table the gateway reads
    nc = await nats.connect(fresh_stream)
    reached = asyncio.Event()

    async def progress(msg: Msg) -> None:
        if int(msg.data) >= last:
            reached.set()

    await nc.subscribe(PROGRESS_SUBJECT, cb=progress)
    await nc.flush()
    conn = await connect(
        fresh_stream, name="test-audit", wait_seconds=5, credentials=natsauth.credentials("audit")
    )
    store = SqlAuditStore(stack.gateway.backends.engine, "gateway-test")
    writer = AuditWriter(conn, store, durable="gateway-test", fetch_timeout=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    try:
        await asyncio.wait_for(reached.wait(), 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await conn.close()
        await nc.close()

    everything = (await c.get("/v1/events", headers=stack.viewer)).json()
    assert [e["sequence"] for e in everything["events"]] == list(range(1, last + 1))
    assert everything["next_after"] is None
    history = (await c.get("/v1/groups/web/history", headers=op)).json()["events"]
    web = await c.get("/v1/events", params={"aggregate_type": "group", "aggregate_id": "web"}, headers=op)
    assert web.json()["events"] == history  # one rendering of an event everywhere

    page1 = (await c.get("/v1/events", params={"type": "GroupScaled", "limit": 2}, headers=op)).json()
    assert [e["data"]["instances"] for e in page1["events"]] == [2, 3]
    assert page1["next_after"] == page1["events"][-1]["sequence"]
    params = {"type": "GroupScaled", "limit": 2, "after": page1["next_after"]}
    page2 = (await c.get("/v1/events", params=params, headers=op)).json()
    assert [e["data"]["instances"] for e in page2["events"]] == [4] and page2["next_after"] is None

    created_at = history[0]["time"]
    since = (await c.get("/v1/events", params={"since": "2999-01-01T00:00:00"}, headers=op)).json()
    assert since["events"] == []
    until = (await c.get("/v1/events", params={"until": created_at}, headers=op)).json()
    assert (
        all(e["time"] < created_at for e in until["events"])
        and until["events"][0]["type"] == "ClusterRegistered"
    )


async def test_gateway_process_serves_and_stops_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "BAY_NATS_URL": stack.gateway.settings.nats_url,
        "BAY_DATA_DIR": str(tmp_path / "gw"),
        "BAY_TOKENS_FILE": str(tmp_path / "tokens.json"),
        "BAY_REGISTRY_ADDR": stack.gateway.settings.registry_addr,
        "BAY_GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "BAY_DNS_ADDR": f"127.0.0.1:{free_port()}",
        "BAY_AUTOSCALER_ADDR": f"127.0.0.1:{free_port()}",
        **natsauth.env("gateway"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.gateway", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:

        async def listening() -> None:
            assert proc.stderr is not None
            while b"gateway listening" not in await proc.stderr.readline():
                assert proc.returncode is None

        await asyncio.wait_for(listening(), 20)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            health = await http.get("/healthz")
            body = health.json()
            assert body.pop("schedulers").keys() == {"local"}
            assert body.pop("dns") is False  # reported too; this stack runs no DNS service
            assert body.pop("deployer") is False  # and no deployer
            assert body.pop("autoscaler") is False  # nor autoscaler
            assert body.pop("folds").keys() == {"registry"}
            assert body == {"status": "ok", "nats": True, "registry": True}
            made = await http.post(
                "/v1/groups", json={"name": "web", "cmd": "sleep 1"}, headers=stack.operator
            )
            assert made.status_code == 201, made.text
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
