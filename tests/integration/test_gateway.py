"""The gateway's REST API over a real registry (gRPC) on the session's nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.integration.gateway_harness import Stack, bearer, start_stack


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    s = await start_stack(fresh_stream, tmp_path)
    yield s
    await s.stop()


def web(**kw: Any) -> dict[str, Any]:
    return {"name": "web", "cmd": "sleep 1000", "instances": 2, "env": {"V": "1"}, **kw}


API_YAML = b"""
name: api
service: web            # both groups answer for the service "web"
cmd: python -m http.server $PORT_HTTP
instances: 3
ports:
  - name: http
"""


async def test_group_lifecycle_over_rest(stack: Stack) -> None:
    c, op = stack.client, stack.operator

    created = await c.post("/v1/groups", json=web(), headers=op)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["duplicate"] is False and body["sequence"] == await stack.last_sequence()
    assert body["group"]["version"] == 1 and body["group"]["spec"]["instances"] == 2
    assert body["group"]["spec"]["resources"] == {"cpus": 0.1, "mem": 128.0, "disk": 0.0}  # defaults shown
    assert created.headers["ETag"] == '"1"'

    yaml_created = await c.post(
        "/v1/groups", content=API_YAML, headers={**op, "Content-Type": "application/yaml"}
    )
    assert yaml_created.status_code == 201, yaml_created.text
    assert yaml_created.json()["group"]["spec"]["ports"][0]["name"] == "http"

    got = await c.get("/v1/groups/web", headers=op)
    assert got.status_code == 200 and got.json()["spec"]["env"] == {"V": "1"}
    listed = (await c.get("/v1/groups", headers=op)).json()["groups"]
    assert [g["spec"]["name"] for g in listed] == ["api", "web"]
    by_service = (await c.get("/v1/groups", params={"service": "web"}, headers=op)).json()["groups"]
    assert {g["spec"]["name"] for g in by_service} == {"api", "web"}

    scaled = await c.post("/v1/groups/web/scale", json={"instances": 5, "reason": "load test"}, headers=op)
    assert scaled.status_code == 200, scaled.text
    assert scaled.json()["group"]["spec"]["instances"] == 5 and scaled.json()["group"]["version"] == 1

    # PUT without a name in the body: the path names the group; If-Match pins the version
    spec = {k: v for k, v in web(instances=5, env={"V": "2"}).items() if k != "name"}
    updated = await c.put("/v1/groups/web", json=spec, headers={**op, "If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["group"]["version"] == 2 and updated.headers["ETag"] == '"2"'

    history = (await c.get("/v1/groups/web/history", headers=op)).json()["events"]
    assert [e["type"] for e in history] == ["GroupCreated", "GroupScaled", "GroupUpdated"]
    assert history[1]["data"] == {"instances": 5, "previous": 2, "reason": "load test"}
    assert all(e["actor"] == "ops" and e["aggregate_id"] == "web" for e in history)

    rolled = await c.post("/v1/groups/web/rollback", json={"version": 1}, headers=op)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["group"]["version"] == 3 and rolled.json()["group"]["spec"]["env"] == {"V": "1"}

    deleted = await c.delete("/v1/groups/web", headers=op)
    assert deleted.status_code == 200 and deleted.json()["group"]["deleted"] is True
    assert (await c.get("/v1/groups/web", headers=op)).status_code == 404
    assert [g["spec"]["name"] for g in (await c.get("/v1/groups", headers=op)).json()["groups"]] == ["api"]


async def test_clusters_and_builds(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    mesos = {"name": "dc2", "backend": "mesos", "address": "http://mesos:5050", "labels": {"zone": "b"}}
    assert (await c.post("/v1/clusters", json=mesos, headers=op)).status_code == 201
    clusters = (await c.get("/v1/clusters", headers=stack.viewer)).json()["clusters"]
    assert [(x["name"], x["backend"]) for x in clusters] == [("dc2", "mesos"), ("local", "local")]

    build = {"id": "web-1.2.3", "image": f"registry.local/web:1.2.3@sha256:{'e' * 64}", "commit": "abc123"}
    made = await c.post("/v1/builds", json=build, headers=op)
    assert made.status_code == 201 and made.json()["image"] == build["image"]
    assert [b["id"] for b in (await c.get("/v1/builds", headers=op)).json()["builds"]] == ["web-1.2.3"]

    before = await stack.last_sequence()
    bad = await c.post("/v1/clusters", json={"name": "dc3", "backend": "mesos"}, headers=op)
    assert bad.status_code == 422
    assert [v["field"] for v in bad.json()["violations"]] == ["address"]  # the registry's, as a body path
    assert await stack.last_sequence() == before


async def test_idempotency_key_and_correlation_id(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    await c.post("/v1/groups", json=web(), headers=op)
    headers = {**op, "Idempotency-Key": "scale-7", "X-Correlation-ID": "req-42"}
    first = await c.post("/v1/groups/web/scale", json={"instances": 7}, headers=headers)
    assert first.headers["X-Correlation-ID"] == "req-42"
    again = await c.post("/v1/groups/web/scale", json={"instances": 7}, headers=headers)
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert again.json()["sequence"] == first.json()["sequence"] == await stack.last_sequence()
    last = (await c.get("/v1/groups/web/history", headers=op)).json()["events"][-1]
    assert last["idempotency_key"] == "scale-7" and last["correlation_id"] == "req-42"
    fresh = await c.get("/v1/groups", headers=op)
    assert len(fresh.headers["X-Correlation-ID"]) == 36  # a new UUID when the caller sent none


async def test_tokens_and_roles(stack: Stack) -> None:
    c = stack.client
    before = await stack.last_sequence()
    none = await c.post("/v1/groups", json=web())
    assert none.status_code == 401 and none.json()["error"] == "unauthenticated"
    assert none.headers["WWW-Authenticate"] == "Bearer" and none.json()["hint"]
    unknown = await c.get("/v1/groups", headers=bearer("bay_not-a-token"))
    assert unknown.status_code == 401
    viewer_write = await c.post("/v1/groups", json=web(), headers=stack.viewer)
    assert viewer_write.status_code == 403 and viewer_write.json()["error"] == "permission_denied"
    viewer_delete = await c.delete("/v1/clusters", headers=stack.viewer)
    assert viewer_delete.status_code == 405  # no such route, but still the error shape
    assert viewer_delete.json()["error"] == "method_not_allowed"
    assert await stack.last_sequence() == before
    assert (await c.get("/v1/groups", headers=stack.viewer)).status_code == 200
    assert (await c.get("/v1/clusters", headers=stack.viewer)).status_code == 200
    # a malformed body from a caller without a token is refused for the token, not parsed
    assert (
        await c.post("/v1/groups", content=b"{", headers={"Content-Type": "application/json"})
    ).status_code == 401


async def test_conflict_and_not_found(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    await c.post("/v1/groups", json=web(), headers=op)
    await c.put("/v1/groups/web", json=web(env={"V": "2"}), headers=op)  # now version 2
    before = await stack.last_sequence()
    stale = await c.put("/v1/groups/web", json=web(env={"V": "3"}), headers={**op, "If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"
    assert "version 2" in stale.json()["message"] and stale.json()["hint"]
    stale_scale = await c.post("/v1/groups/web/scale", json={"instances": 1}, headers={**op, "If-Match": "1"})
    assert stale_scale.status_code == 409
    dup = await c.post("/v1/groups", json=web(), headers=op)
    assert dup.status_code == 409
    assert await stack.last_sequence() == before

    for method, path in [
        ("GET", "/v1/groups/nope"),
        ("GET", "/v1/groups/nope/history"),
        ("DELETE", "/v1/groups/nope"),
    ]:
        resp = await c.request(method, path, headers=op)
        assert resp.status_code == 404, (method, path)
        assert resp.json()["error"] == "not_found" and "nope" in resp.json()["message"]
    missing = await c.post("/v1/groups/nope/scale", json={"instances": 1}, headers=op)
    assert missing.status_code == 404
    old = await c.post("/v1/groups/web/rollback", json={"version": 9}, headers=op)
    assert old.status_code == 404
    assert await stack.last_sequence() == before


async def test_health_metrics_and_openapi(stack: Stack) -> None:
    c = stack.client
    health = await c.get("/healthz")
    body = health.json()
    assert body.pop("schedulers").keys() == {"local"}  # reported, whether or not one runs
    assert body.pop("dns") is False  # reported too; this stack runs no DNS service
    assert body.pop("deployer") is False  # and no deployer
    assert body.pop("autoscaler") is False  # nor autoscaler
    assert body.pop("folds").keys() == {"registry"}  # the folding services that answered
    assert health.status_code == 200 and body == {"status": "ok", "nats": True, "registry": True}
    await c.get("/v1/groups", headers=stack.viewer)
    await c.get("/v1/groups/nope", headers=stack.viewer)
    metrics = await c.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'bay_gateway_requests_total{method="GET",route="/v1/groups",status="200"} 1.0' in text
    assert 'bay_gateway_requests_total{method="GET",route="/v1/groups/{name}",status="404"} 1.0' in text
    assert 'bay_gateway_request_duration_seconds_count{method="GET",route="/v1/groups"} 1.0' in text
    assert "bay_gateway_requests_in_flight 1.0" in text  # the /metrics request itself

    doc = (await c.get("/openapi.json")).json()
    body = doc["paths"]["/v1/groups"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/GroupSpec"
    assert "application/yaml" in body
    spec_schema = doc["components"]["schemas"]["GroupSpec"]
    assert {"name", "instances", "ports", "health_check"} <= set(spec_schema["properties"])
    assert spec_schema["additionalProperties"] is False
    assert "ScaleRequest" in doc["components"]["schemas"]
    assert (await c.get("/docs")).status_code == 200
