"""``/v1/dns`` and ``bay dns`` over a real DNS process, a real registry and a real gateway: the
records and names of a service, each task answered or not and why, the counters, 404 for a service
no group registers, and a quick 503 while the DNS service is down (and recovery once it is back).

Groups are created through the gateway (the registry appends them); tasks are appended as a
scheduler would (``EventWriter``), so the test chooses their addresses and health.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.rdatatype
import httpx
import pytest
import pytest_asyncio

from libs.natsserver import free_port
from tests.integration.dns_harness import DnsProcess, EventWriter
from tests.integration.gateway_harness import ServedGateway, Stack, serve, start_stack
from tests.poll import poll_until

pytestmark = pytest.mark.timeout(120)

BAY = str(Path(sys.executable).parent / "bay")
DEADLINE = 15.0
HEALTH = {"protocol": "http", "path": "/"}


@dataclass
class Setup:
    stack: Stack
    dns: DnsProcess
    events: EventWriter
    served: ServedGateway
    http: httpx.AsyncClient  # on the real socket, as the CLI reaches it
    tmp: Path

    @property
    def viewer(self) -> dict[str, str]:
        return self.stack.viewer

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.viewer)

    async def create(self, **spec: Any) -> None:
        resp = await self.http.post("/v1/groups", json=spec, headers=self.stack.operator)
        assert resp.status_code == 201, resp.text

    async def until_folded(self, sequence: int) -> dict[str, Any]:
        """The DNS service's stats once it has folded the event at ``sequence`` (its own report)."""

        async def folded() -> dict[str, Any] | None:
            resp = await self.get("/v1/dns")
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            return body if body["sequence"] >= sequence else None

        found: dict[str, Any] = await poll_until(folded, f"DNS folded sequence {sequence}", DEADLINE)
        return found

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """The real ``bay`` CLI against this gateway, with the viewer token: (exit code, out, err)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
        env |= {
            "BAY_GATEWAY_URL": self.served.url,
            "BAY_TOKEN": self.stack.registry.viewer_token,
            "BAY_DATA_DIR": str(self.tmp / "cli"),
            "COLUMNS": "200",
        }
        proc = await asyncio.create_subprocess_exec(
            BAY, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), " ".join(err.decode().split())


@pytest_asyncio.fixture
async def setup(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Setup]:
    grpc_port = free_port()
    stack = await start_stack(
        fresh_stream, tmp_path, dns_addr=f"127.0.0.1:{grpc_port}", dns_timeout_seconds=1.0
    )
    # reads need a token here (no anonymous reads): a listing proves the gateway passes the caller's on
    server = DnsProcess(
        fresh_stream,
        tmp_path / "dns",
        env={"BAY_ANONYMOUS_READ": "false", "BAY_TOKENS_FILE": str(tmp_path / "tokens.json")},
        grpc_port=grpc_port,
    )
    events = await EventWriter.open(fresh_stream)
    served: ServedGateway | None = None
    try:
        await server.start()
        served = await serve(stack.gateway)
        async with httpx.AsyncClient(base_url=served.url, timeout=DEADLINE) as http:
            yield Setup(stack, server, events, served, http, tmp_path)
    finally:
        if served is not None:
            await served.stop()
        server.stop()
        await events.close()
        await stack.stop()


async def web_service(s: Setup) -> dict[str, str]:
    """Service ``web``: group web (health-checked, 2 of 3 tasks up), group web-canary (no check).

    Returns the task ids: up (healthy), unchecked (running, health not checked yet), staging
    (launched, not running), canary (running; its group has no health check)."""
    await s.create(name="web", cmd="serve", instances=3, ports=[{"name": "http"}], health_check=HEALTH)
    await s.create(name="web-canary", service="web", cmd="serve", instances=1, ports=[{"name": "http"}])
    ids = {
        "staging": await s.events.launch("web", "10.0.0.4", {"http": 31004}, running=False),
        "unchecked": await s.events.launch("web", "10.0.0.2", {"http": 31002}),
        "canary": await s.events.launch("web-canary", "10.0.0.3", {"http": 31003}, service="web"),
        "up": await s.events.launch("web", "10.0.0.1", {"http": 31001}),
    }
    last = await s.events.health(ids["up"], True)
    await s.until_folded(last)
    return ids


async def test_listing_names_records_and_why_a_task_is_not_answered(setup: Setup) -> None:
    s = setup
    ids = await web_service(s)

    resp = await s.get("/v1/dns/web")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["service"], body["cluster"], body["exists"]) == ("web", "", True)
    assert body["zone"] == "bay.internal."
    assert {
        "web.local.bay.internal.",
        "web.bay.internal.",
        "web.group.local.bay.internal.",
        "web-canary.group.local.bay.internal.",
        "_http._tcp.web.local.bay.internal.",
    } <= set(body["names"])

    records = body["records"]
    a_local = {(r["data"], r["task_id"]) for r in records if r["name"] == "web.local.bay.internal."}
    assert a_local == {("10.0.0.1", ids["up"]), ("10.0.0.3", ids["canary"])}
    assert all(r["type"] == "A" and r["ttl"] == 5 for r in records if r["name"] == "web.local.bay.internal.")
    srv = [r for r in records if r["name"] == "_http._tcp.web.local.bay.internal."]
    assert all(r["type"] == "SRV" for r in srv)
    srv_ports = {(r["data"].split()[2], r["task_id"]) for r in srv}  # priority weight port target
    assert srv_ports == {("31001", ids["up"]), ("31003", ids["canary"])}
    assert not any(r["task_id"] in (ids["unchecked"], ids["staging"]) for r in records)

    tasks = {t["id"]: t for t in body["tasks"]}
    assert set(tasks) == set(ids.values())
    assert (tasks[ids["up"]]["answered"], tasks[ids["up"]]["reason"]) == (True, "")
    assert (tasks[ids["canary"]]["answered"], tasks[ids["canary"]]["reason"]) == (True, "")
    assert (tasks[ids["unchecked"]]["answered"], tasks[ids["unchecked"]]["reason"]) == (
        False,
        "health not checked yet",
    )
    assert (tasks[ids["staging"]]["answered"], tasks[ids["staging"]]["reason"]) == (False, "not running")
    assert tasks[ids["up"]]["ports"] == {"http": 31001} and tasks[ids["up"]]["addresses"] == ["10.0.0.1"]
    groups = {g["name"]: g for g in body["groups"]}
    assert groups["web"]["health_checked"] and not groups["web-canary"]["health_checked"]
    assert (groups["web"]["share"], groups["web-canary"]["share"]) == (3.0, 1.0)  # their instances

    # the listing says what the DNS port answers
    assert await s.dns.addresses("web.local.bay.internal.") == {"10.0.0.1", "10.0.0.3"}
    reply = await s.dns.query("_http._tcp.web.local.bay.internal.", "SRV")
    answered = {r.port for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for r in rrset}
    assert answered == {31001, 31003}

    # one cluster: no cluster-less name; a cluster without the service is a 404
    local = (await s.get("/v1/dns/web", cluster="local")).json()
    assert local["cluster"] == "local" and "web.bay.internal." not in local["names"]
    assert {t["id"] for t in local["tasks"]} == set(ids.values())
    elsewhere = await s.get("/v1/dns/web", cluster="eu")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["message"] == "no group registers service 'web' in cluster 'eu'"

    stats = (await s.get("/v1/dns")).json()
    assert (stats["zone"], stats["ttl"], stats["services"], stats["groups"]) == ("bay.internal.", 5, 1, 2)
    assert (stats["tasks"], stats["ready_tasks"]) == (4, 2)
    assert stats["queries"] >= 2 and stats["upstreams"] == []

    health = (await s.http.get("/healthz")).json()
    assert health["dns"] is True and health["status"] == "ok"
    doc = (await s.http.get("/openapi.json")).json()
    assert "get" in doc["paths"]["/v1/dns/{service}"] and "get" in doc["paths"]["/v1/dns"]
    assert {"DnsLookup", "DnsRecord", "DnsTask", "DnsGroup", "DnsStats"} <= set(doc["components"]["schemas"])


async def test_unknown_service_is_a_404_and_reads_need_a_token(setup: Setup) -> None:
    s = setup
    await s.create(name="api", cmd="serve")
    resp = await s.get("/v1/dns/nope")
    assert resp.status_code == 404
    body = resp.json()
    assert body["error"] == "not_found" and body["message"] == "no group registers service 'nope'"
    assert "bay get groups" in body["hint"]
    # a deleted group registers nothing any more
    deleted = await s.http.delete("/v1/groups/api", headers={**s.stack.operator, "Idempotency-Key": "d1"})
    assert deleted.status_code == 200, deleted.text
    await s.until_folded(deleted.json()["sequence"])
    assert (await s.get("/v1/dns/api")).status_code == 404
    assert (await s.http.get("/v1/dns/api")).status_code == 401
    assert (await s.http.get("/v1/dns")).status_code == 401


async def test_dns_down_is_a_quick_503_and_back_once_it_is(setup: Setup) -> None:
    s = setup
    await web_service(s)
    s.dns.stop()
    addr = s.stack.gateway.settings.dns_addr
    for path in ("/v1/dns/web", "/v1/dns"):
        began = time.monotonic()
        resp = await s.get(path)
        took = time.monotonic() - began
        assert resp.status_code == 503, (path, resp.text)
        body = resp.json()
        assert body["error"] == "unavailable" and f"DNS service ({addr})" in body["message"], body
        assert "BAY_DNS_ADDR" in body["hint"]
        assert took < 3.0, f"{path} took {took:.2f}s"
    health = (await s.http.get("/healthz")).json()
    assert health["dns"] is False and health["status"] == "ok"  # informative, like the schedulers

    code, out, err = await s.cli("dns", "web")
    assert code == 5 and "DNS service" in err and "BAY_DNS_ADDR" in err, (out, err)

    # the DNS service comes back (same ports): the gateway reaches it again within its short backoff
    await s.dns.start()

    async def back() -> bool:
        return (await s.get("/v1/dns/web")).status_code == 200

    await poll_until(back, "the gateway reaching the restarted DNS service", DEADLINE)


async def test_bay_dns_prints_names_records_and_tasks(setup: Setup) -> None:
    s = setup
    ids = await web_service(s)

    code, out, err = await s.cli("dns", "web")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (
        "service web in bay.internal.: 2/4 task(s) answered; "
        "groups: web on local (75%), web-canary on local (25%)"
    )
    assert lines[1] == "names:" and "  web.local.bay.internal." in lines
    records = [line.split() for line in lines[lines.index("records:") + 1 : lines.index("tasks:")]]
    assert records[0] == ["name", "type", "data", "task"]
    assert ["web.local.bay.internal.", "A", "10.0.0.1", ids["up"]] in records
    srv = [r for r in records if r[0] == "_http._tcp.web.local.bay.internal."]
    assert {(r[1], r[4], r[6]) for r in srv} == {("SRV", "31001", ids["up"]), ("SRV", "31003", ids["canary"])}
    tasks = [line.rstrip().split(maxsplit=5) for line in lines[lines.index("tasks:") + 1 :]]
    assert tasks[0] == ["task", "group", "cluster", "state", "answered", "reason"]
    by_id = {t[0]: t for t in tasks[1:]}
    assert by_id[ids["up"]][1:] == ["web", "local", "RUNNING", "yes", "-"]
    assert by_id[ids["unchecked"]][1:] == ["web", "local", "RUNNING", "no", "health not checked yet"]
    assert by_id[ids["staging"]][4:] == ["no", "not running"]

    code, out, err = await s.cli("dns", "web", "--json")
    assert code == 0, err
    assert json.loads(out) == (await s.get("/v1/dns/web")).json()
    code, out, _ = await s.cli("dns", "web", "--cluster", "local", "-o", "yaml")
    assert code == 0 and "cluster: local" in out

    code, out, err = await s.cli("dns", "nope")
    assert (code, out) == (2, "") and "no group registers service 'nope'" in err
    code, _, err = await s.cli("dns", "web", "--cluster", "eu")
    assert code == 2 and "no group registers service 'web' in cluster 'eu'" in err
