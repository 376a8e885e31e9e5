"""The gateway's autoscale routes over real HTTP (uvicorn) in front of a real registry and a fake
autoscaler (a real grpc.aio server): a policy sent as given (every kind of metric and source, unset
behaviours left unset), 422 naming the field (the gateway's own checks and the autoscaler's field
violations), idempotency, 404, the status, the list, and an autoscaler that is down (a quick 503)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from bay.v1 import autoscale_pb2

from tests.integration.autoscaler_fake import FakeAutoscaler, sample_status, start_autoscaler
from tests.integration.gateway_harness import ServedGateway, Stack, serve, start_stack
from tests.integration.gateway_harness import rejected_fields as fields

DEADLINE = 10.0
POLICY: dict[str, Any] = {
    "min": 2,
    "max": 10,
    "metrics": [
        {"kind": "cpu", "target": 0.6},
        {"kind": "custom", "name": "rps", "target": 50, "source": {"pushed": True}, "per_task": False},
        {
            "kind": "custom",
            "name": "latency",
            "target": 0.25,
            "source": {
                "prometheus": {
                    "port_name": "http",
                    "path": "/metrics",
                    "metric": "http_latency",
                    "labels": {"route": "/"},
                }
            },
        },
        {"kind": "backlog", "target": 100, "activation": 1, "backlog": {"stream": "jobs", "consumer": "w"}},
    ],
    "up": {"window_seconds": 10, "panic_threshold": 3},
    "down": {"window_seconds": 120, "max_percent": 50, "min_step": 2},
    "tolerance": 0.05,
}


@dataclass
class Setup:
    stack: Stack
    autoscaler: FakeAutoscaler
    served: ServedGateway
    http: httpx.AsyncClient  # on the real socket

    @property
    def op(self) -> dict[str, str]:
        return self.stack.operator

    @property
    def viewer(self) -> dict[str, str]:
        return self.stack.viewer

    async def put(self, group: str, body: Any, **headers: str) -> httpx.Response:
        return await self.http.put(f"/v1/groups/{group}/autoscale", json=body, headers={**self.op, **headers})

    def requests(self, method: str) -> list[Any]:
        return [r for m, r, _, _ in self.autoscaler.book.seen if m == method]


@pytest_asyncio.fixture
async def setup(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Setup]:
    autoscaler = await start_autoscaler()
    stack = await start_stack(fresh_stream, tmp_path, autoscaler_addr=autoscaler.addr)
    served = await serve(stack.gateway)
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=DEADLINE) as http:
            yield Setup(stack, autoscaler, served, http)
    finally:
        await served.stop()
        await stack.stop()
        await autoscaler.stop()


async def test_the_policy_is_sent_as_given(setup: Setup) -> None:
    resp = await setup.put("web", {**POLICY, "reason": "load test"}, **{"Idempotency-Key": "as-1"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["duplicate"] is False
    (sent,) = setup.requests("SetPolicy")
    assert isinstance(sent, autoscale_pb2.SetPolicyRequest)
    p = sent.policy
    assert (p.group, p.min, p.max, p.tolerance) == ("web", 2, 10, 0.05)
    assert (sent.options.idempotency_key, sent.options.reason) == ("as-1", "load test")
    cpu, rps, latency, backlog = p.metrics
    assert (cpu.kind, cpu.name, cpu.target, cpu.WhichOneof("source"), cpu.HasField("per_task")) == (
        "cpu", "", 0.6, None, False,
    )  # fmt: skip
    assert (rps.name, rps.WhichOneof("source"), rps.pushed, rps.per_task) == ("rps", "pushed", True, False)
    prom = latency.prometheus
    assert (prom.port_name, prom.path, prom.metric, dict(prom.labels)) == (
        "http", "/metrics", "http_latency", {"route": "/"},
    )  # fmt: skip
    assert (backlog.backlog.stream, backlog.backlog.consumer, backlog.activation) == ("jobs", "w", 1.0)
    assert (p.up.window_seconds, p.up.panic_threshold) == (10, 3)
    assert not p.up.HasField("stable_window_seconds") and not p.up.HasField("cooldown_seconds")
    assert (p.down.window_seconds, p.down.max_percent, p.down.min_step) == (120, 50, 2)
    assert not p.down.HasField("cooldown_seconds")  # unset stays unset: the autoscaler defaults it
    _, _, auth, corr = setup.autoscaler.book.seen[-1]
    assert auth == setup.op["Authorization"] and corr

    got = (await setup.http.get("/v1/groups/web/autoscale", headers=setup.viewer)).json()
    assert got == resp.json()["policy"]
    assert got["group"] == "web" and got["metrics"][0] == {
        "kind": "cpu", "name": "", "target": 0.6, "activation": 0.0, "per_task": None,
        "source": None, "backlog": None,
    }  # fmt: skip
    assert got["metrics"][2]["source"]["prometheus"]["labels"] == {"route": "/"}
    assert got["up"] == {
        "window_seconds": 10.0, "stable_window_seconds": None,
        "panic_threshold": 3.0, "cooldown_seconds": None,
    }  # fmt: skip

    again = await setup.put("web", POLICY, **{"Idempotency-Key": "as-1"})
    assert again.status_code == 200 and again.json()["duplicate"] is True


async def test_bad_policies_are_422_naming_the_field(setup: Setup) -> None:
    assert fields(await setup.put("web", {**POLICY, "min": 5, "max": 3})) == ["max"]
    assert fields(await setup.put("web", {**POLICY, "metrics": [{"kind": "cpu", "target": 1.5}]})) == [
        "metrics.0.target"
    ]
    assert fields(await setup.put("web", {**POLICY, "metrics": [{"kind": "backlog", "target": 5}]})) == [
        "metrics.0.backlog"
    ]
    two = [{"kind": "cpu", "target": 0.5}, {"kind": "cpu", "target": 0.7}]
    assert fields(await setup.put("web", {**POLICY, "metrics": two})) == ["metrics"]
    assert fields(await setup.put("web", {**POLICY, "down": {"max_percent": 0}})) == ["down.max_percent"]
    assert fields(await setup.put("web", {**POLICY, "minimum": 1})) == ["minimum"]
    assert fields(await setup.put("web", {**POLICY, "group": "api"})) == ["group"]
    assert fields(await setup.put("web", POLICY, **{"Idempotency-Key": "k" * 201})) == ["Idempotency-Key"]
    assert setup.requests("SetPolicy") == []  # none of them reached the autoscaler

    elsewhere = {
        **POLICY,
        "metrics": [{"kind": "backlog", "target": 5, "backlog": {"stream": "x", "consumer": "c"}}],
    }
    resp = await setup.put("web", elsewhere)
    assert fields(resp) == ["metrics.0.backlog.stream"]  # the autoscaler's violation, in the body's words
    assert "no stream 'x'" in resp.json()["violations"][0]["description"]


async def test_a_viewer_cannot_set_a_policy(setup: Setup) -> None:
    resp = await setup.http.put("/v1/groups/web/autoscale", json=POLICY, headers=setup.viewer)
    assert resp.status_code == 403
    resp = await setup.http.delete("/v1/groups/web/autoscale", headers=setup.viewer)
    assert resp.status_code == 403
    assert setup.autoscaler.book.seen == []


async def test_no_policy_is_404_and_off_removes_it(setup: Setup) -> None:
    for path in ("/v1/groups/web/autoscale", "/v1/groups/web/autoscale/status"):
        resp = await setup.http.get(path, headers=setup.viewer)
        assert resp.status_code == 404, resp.text
        assert "not autoscaled" in resp.json()["message"]
    assert (await setup.put("web", POLICY)).status_code == 200
    first = await setup.http.delete(
        "/v1/groups/web/autoscale", headers={**setup.op, "Idempotency-Key": "off"}
    )
    assert first.json() == {"removed": True}
    again = await setup.http.delete(
        "/v1/groups/web/autoscale", headers={**setup.op, "Idempotency-Key": "off"}
    )
    assert again.json() == {"removed": True}  # the same answer for the same key
    other = await setup.http.delete("/v1/groups/web/autoscale", headers=setup.op)
    assert other.json() == {"removed": False}
    (sent, _, _) = setup.requests("RemovePolicy")
    assert (sent.group, sent.options.idempotency_key) == ("web", "off")
    assert (await setup.http.get("/v1/groups/web/autoscale", headers=setup.viewer)).status_code == 404


async def test_status_and_list(setup: Setup) -> None:
    assert (await setup.put("web", POLICY)).status_code == 200
    assert (
        await setup.put("api", {"min": 1, "max": 3, "metrics": [{"kind": "memory", "target": 0.8}]})
    ).is_success
    setup.autoscaler.book.statuses["web"] = sample_status("web")
    resp = await setup.http.get("/v1/groups/web/autoscale/status", headers=setup.viewer)
    assert resp.status_code == 200, resp.text
    s = resp.json()
    assert (s["current"], s["ready"], s["reason"], s["policy"]["max"]) == (
        4,
        3,
        "cooldown until 12:04:31",
        10,
    )
    latest = s["latest"]
    assert (latest["from"], latest["to"], latest["rule"], latest["recommendation"], latest["need"]) == (
        4, 4, "hold", 5, 4.4,
    )  # fmt: skip
    assert latest["metrics"] == [
        {"name": "cpu", "value": 0.83, "target": 0.6, "recommendation": 5, "note": ""},
        {"name": "queue", "value": None, "target": 100.0, "recommendation": None, "note": "no data"},
    ]
    assert [(d["from"], d["to"], d["rule"]) for d in s["decisions"]] == [
        (2, 4, "proportional cpu"), (3, 2, "step limit"),
    ]  # fmt: skip
    assert s["decisions"][0]["at"].startswith("2027-01-15T")

    bare = (await setup.http.get("/v1/groups/api/autoscale/status", headers=setup.viewer)).json()
    assert (bare["latest"], bare["decisions"], bare["current"]) == (None, [], 0)

    listed = (await setup.http.get("/v1/autoscale", headers=setup.viewer)).json()
    assert [p["group"] for p in listed["policies"]] == ["api", "web"]


async def test_an_autoscaler_that_is_down_is_a_quick_503(fresh_stream: str, tmp_path: Path) -> None:
    stack = await start_stack(fresh_stream, tmp_path, autoscaler_timeout_seconds=30)  # nothing there
    try:
        for resp in await asyncio.wait_for(
            asyncio.gather(  # well within the 30 s deadline: a refused port is answered at once
                stack.client.put("/v1/groups/web/autoscale", json=POLICY, headers=stack.operator),
                stack.client.get("/v1/groups/web/autoscale", headers=stack.viewer),
                stack.client.get("/v1/groups/web/autoscale/status", headers=stack.viewer),
                stack.client.delete("/v1/groups/web/autoscale", headers=stack.operator),
                stack.client.get("/v1/autoscale", headers=stack.viewer),
            ),
            10,
        ):
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "unavailable"
            assert resp.json()["message"].startswith("the autoscaler (127.0.0.1:")
            assert "BAY_AUTOSCALER_ADDR" in resp.json()["hint"] and "bay up" in resp.json()["hint"]
            assert resp.headers["Retry-After"] == "1"
        health = (await stack.client.get("/healthz")).json()
        assert health["autoscaler"] is False and health["status"] == "ok"  # informative
    finally:
        await stack.stop()


async def test_health_reports_the_autoscaler_and_the_document_the_routes(setup: Setup) -> None:
    health = (await setup.http.get("/healthz")).json()
    assert health["autoscaler"] is True and health["status"] == "ok"
    doc = (await setup.http.get("/openapi.json")).json()
    put = doc["paths"]["/v1/groups/{name}/autoscale"]["put"]
    assert put["x-bay-role"] == "operator"
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PolicyRequest")
    assert doc["paths"]["/v1/groups/{name}/autoscale"]["get"]["x-bay-role"] == "viewer"
    assert doc["paths"]["/v1/groups/{name}/autoscale"]["delete"]["x-bay-role"] == "operator"
    assert doc["paths"]["/v1/groups/{name}/autoscale/status"]["get"]["x-bay-role"] == "viewer"
    assert doc["paths"]["/v1/autoscale"]["get"]["x-bay-role"] == "viewer"
    schemas = doc["components"]["schemas"]
    assert {"PolicyRequest", "MetricTarget", "Policy", "AutoscaleStatus", "Decision"} <= set(schemas)
    assert schemas["MetricTarget"]["properties"]["kind"]["enum"] == ["cpu", "memory", "custom", "backlog"]


async def test_a_policy_may_be_sent_as_yaml(setup: Setup) -> None:
    text = "min: 1\nmax: 3\nmetrics:\n  - kind: memory\n    target: 0.8\ndown:\n  cooldown_seconds: 30\n"
    headers = {**setup.op, "Content-Type": "application/yaml"}
    resp = await setup.http.put("/v1/groups/web/autoscale", content=text, headers=headers)
    assert resp.status_code == 200, resp.text
    (sent,) = setup.requests("SetPolicy")
    assert (sent.policy.metrics[0].kind, sent.policy.down.cooldown_seconds) == ("memory", 30)
