"""The gateway's deployment routes over real HTTP (uvicorn) in front of a real registry and a fake
deployer (a real grpc.aio server): deploy (strategy, idempotency, 409, 422 naming fields), reads,
controls, the SSE stream of a deployment's progress, and a deployer that is down (a quick 503)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from bay.v1 import deploy_pb2

from tests.integration.deployer_fake import FakeDeployer, start_deployer
from tests.integration.gateway_harness import ServedGateway, Stack, serve, sse_messages, start_stack
from tests.integration.gateway_harness import rejected_fields as fields

DEADLINE = 10.0
CANARY = {
    "kind": "canary",
    "steps": [
        {"set_share": 0.2},
        {"pause": {"seconds": 30}},
        {"pause": {}},
        {"set_weight": 50},
        {"analysis": {"seconds": 60, "thresholds": [{"metric": "failed_tasks", "op": "<=", "value": 0}]}},
    ],
    "min_ready_seconds": 5,
    "progress_deadline_seconds": 300,
}


@dataclass
class Setup:
    stack: Stack
    deployer: FakeDeployer
    served: ServedGateway
    http: httpx.AsyncClient  # on the real socket

    @property
    def op(self) -> dict[str, str]:
        return self.stack.operator

    @property
    def viewer(self) -> dict[str, str]:
        return self.stack.viewer

    async def deploy(self, group: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.http.post(f"/v1/groups/{group}/deploy", json=body, headers={**self.op, **headers})

    def requests(self, method: str) -> list[Any]:
        return [r for m, r, _, _ in self.deployer.book.seen if m == method]


@pytest_asyncio.fixture
async def setup(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Setup]:
    deployer = await start_deployer()
    stack = await start_stack(fresh_stream, tmp_path, deployer_addr=deployer.addr)
    served = await serve(stack.gateway)
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=DEADLINE) as http:
            yield Setup(stack, deployer, served, http)
    finally:
        await served.stop()
        await stack.stop()
        await deployer.stop()


async def test_deploy_sends_the_build_the_strategy_and_the_caller(setup: Setup) -> None:
    resp = await setup.deploy(
        "web", {"build": "web-42", "strategy": CANARY, "reason": "ci"}, **{"Idempotency-Key": "ci-1"}
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    d = body["deployment"]
    assert (body["duplicate"], d["id"], d["group"], d["state"], d["ended"]) == (
        False,
        "web-1",
        "web",
        "running",
        False,
    )
    assert (d["from_build"], d["to_build"], d["from_version"], d["to_version"]) == ("web-41", "web-42", 1, 2)
    assert [s["name"] for s in d["steps"]] == [
        "share 20%",
        "pause 30s",
        "pause",
        "weight 50%",
        "analysis",
        "promote",
    ]
    assert [s["state"] for s in d["steps"]][:2] == ["running", "pending"]
    assert d["strategy"]["steps"][:3] == [
        {"set_share": 0.2},
        {"pause": {"seconds": 30.0}},
        {"pause": {"seconds": None}},
    ]
    threshold = {"metric": "failed_tasks", "op": "<=", "value": 0.0}
    assert d["strategy"]["steps"][4] == {
        "analysis": {"seconds": 60.0, "thresholds": [threshold], "no_data": "wait"}
    }
    assert (d["strategy"]["min_ready_seconds"], d["strategy"]["minimum_health_capacity"]) == (5.0, None)

    (sent,) = setup.requests("Deploy")
    assert isinstance(sent, deploy_pb2.DeployRequest)
    assert (sent.group, sent.build, sent.options.idempotency_key, sent.options.reason) == (
        "web",
        "web-42",
        "ci-1",
        "ci",
    )
    assert [s.WhichOneof("step") for s in sent.strategy.steps] == [
        "set_share",
        "pause",
        "pause",
        "set_weight",
        "analysis",
    ]
    assert sent.strategy.steps[1].pause.seconds == 30 and not sent.strategy.steps[2].pause.HasField("seconds")
    assert not sent.strategy.HasField("maximum_over_capacity")  # unset stays unset: the deployer defaults it
    _, _, auth, corr = setup.deployer.book.seen[-1]
    assert auth == setup.op["Authorization"] and corr  # the caller's token and the request's id

    again = await setup.deploy("web", {"build": "web-42", "strategy": CANARY}, **{"Idempotency-Key": "ci-1"})
    assert again.status_code == 201 and again.json()["duplicate"] is True
    assert again.json()["deployment"]["id"] == "web-1"


async def test_a_second_deployment_is_409_unless_it_supersedes(setup: Setup) -> None:
    assert (await setup.deploy("web", {"build": "web-42"})).status_code == 201
    second = await setup.deploy("web", {"build": "web-43"})
    assert second.status_code == 409, second.text
    assert second.json()["error"] == "conflict"
    assert "web-1" in second.json()["message"] and "supersede" in second.json()["hint"]
    superseding = await setup.deploy("web", {"build": "web-43", "supersede": True})
    assert superseding.status_code == 201, superseding.text
    assert superseding.json()["deployment"]["id"] == "web-2"
    first = await setup.http.get("/v1/deployments/web-1", headers=setup.viewer)
    assert (first.json()["state"], first.json()["ended"]) == ("superseded", True)


async def test_validation_names_the_field(setup: Setup) -> None:
    two_keys = {
        "build": "web-42",
        "strategy": {"kind": "canary", "steps": [{"set_share": 0.2, "set_weight": 5}]},
    }
    assert fields(await setup.deploy("web", two_keys)) == ["strategy.steps.0"]
    assert fields(await setup.deploy("web", {"build": "web-42", "strategy": {"kind": "sideways"}})) == [
        "strategy.kind"
    ]
    steps_not_canary = {"build": "web-42", "strategy": {"steps": [{"set_share": 0.5}]}}
    assert fields(await setup.deploy("web", steps_not_canary)) == ["strategy.steps"]
    share = {"build": "web-42", "strategy": {"kind": "canary", "steps": [{"set_share": 1.5}]}}
    assert fields(await setup.deploy("web", share)) == ["strategy.steps.0.set_share"]
    metric = {
        "kind": "canary",
        "steps": [{"analysis": {"seconds": 5, "thresholds": [{"metric": "x", "op": "<", "value": 1}]}}],
    }
    assert fields(await setup.deploy("web", {"build": "web-42", "strategy": metric})) == [
        "strategy.steps.0.analysis.thresholds.0.metric"
    ]
    capacity = {"build": "web-42", "strategy": {"minimum_health_capacity": 2}}
    assert fields(await setup.deploy("web", capacity)) == ["strategy.minimum_health_capacity"]
    assert fields(await setup.deploy("web", {"build": "web-42", "strategy": {"min_ready_seconds": "5"}})) == [
        "strategy.min_ready_seconds"
    ]
    assert fields(await setup.deploy("web", {})) == ["build"]
    assert fields(await setup.deploy("web", {"build": "web-42", "spec": {"cmd": "x"}})) == ["build"]
    assert fields(await setup.deploy("web", {"spec": {"cmd": "x", "instances": -1}})) == ["spec.instances"]
    assert fields(await setup.deploy("web", {"spec": {"name": "api", "cmd": "x"}})) == ["spec.name"]
    assert fields(await setup.deploy("web", {"build": "web-42", "colour": "blue"})) == ["colour"]
    key = await setup.deploy("web", {"build": "web-42"}, **{"Idempotency-Key": "k" * 201})
    assert fields(key) == ["Idempotency-Key"]
    assert setup.requests("Deploy") == []  # none of them reached the deployer
    # what only the deployer knows, named as the body names it
    unknown = await setup.deploy("web", {"build": "nope"})
    assert fields(unknown) == ["build"] and "nope" in unknown.json()["violations"][0]["description"]


async def test_a_spec_deploys_with_the_paths_name(setup: Setup) -> None:
    resp = await setup.deploy("web", {"spec": {"cmd": "sleep 100", "build": "web-43", "instances": 2}})
    assert resp.status_code == 201, resp.text
    (sent,) = setup.requests("Deploy")
    assert (sent.spec.name, sent.spec.build, sent.spec.instances, sent.build) == ("web", "web-43", 2, "")
    migration = await setup.deploy(
        "api", {"cluster": "eu", "strategy": {"kind": "blue-green", "auto_promote": True}}
    )
    assert migration.status_code == 201, migration.text
    assert migration.json()["deployment"]["to_cluster"] == "eu"
    assert setup.requests("Deploy")[1].strategy.auto_promote


async def test_reads(setup: Setup) -> None:
    missing = await setup.http.get("/v1/groups/web/deployment", headers=setup.viewer)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert (await setup.http.get("/v1/deployments/web-7", headers=setup.viewer)).status_code == 404
    await setup.deploy("web", {"build": "web-42"})
    await setup.deploy("api", {"build": "web-42"})
    current = await setup.http.get("/v1/groups/web/deployment", headers=setup.viewer)
    assert current.status_code == 200 and current.json()["id"] == "web-1"
    listed = await setup.http.get("/v1/deployments", params={"group": "web"}, headers=setup.viewer)
    assert [d["id"] for d in listed.json()["deployments"]] == ["web-1"]
    every = await setup.http.get("/v1/deployments", headers=setup.viewer)
    assert {d["id"] for d in every.json()["deployments"]} == {"web-1", "api-1"}
    assert fields(await setup.http.get("/v1/deployments", params={"limit": -1}, headers=setup.viewer)) == [
        "limit"
    ]
    assert (await setup.http.get("/v1/deployments")).status_code == 401


async def test_controls(setup: Setup) -> None:
    base = "/v1/groups/web/deployment"
    nothing = await setup.http.post(f"{base}/pause", headers=setup.op)
    assert nothing.status_code == 409 and "no running deployment" in nothing.json()["message"]
    await setup.deploy("web", {"build": "web-42", "strategy": CANARY})
    assert (await setup.http.post(f"{base}/pause", headers=setup.viewer)).status_code == 403

    paused = await setup.http.post(f"{base}/pause", json={"reason": "looks odd"}, headers=setup.op)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["deployment"]["state"], paused.json()["deployment"]["reason"]) == (
        "paused",
        "looks odd",
    )
    assert setup.requests("Pause")[-1].reason == "looks odd"
    assert (await setup.http.post(f"{base}/pause", headers=setup.op)).status_code == 409  # paused already
    yaml_body = await setup.http.post(
        f"{base}/resume", content=b"reason: fine\n", headers={**setup.op, "Content-Type": "application/yaml"}
    )
    assert yaml_body.json()["deployment"]["state"] == "running", yaml_body.text
    assert fields(await setup.http.post(f"{base}/resume", json={"why": "x"}, headers=setup.op)) == ["why"]

    step = await setup.http.post(f"{base}/promote", headers={**setup.op, "Idempotency-Key": "p-1"})
    assert step.json()["deployment"]["current_step"] == 1
    assert setup.requests("Promote")[0].options.idempotency_key == "p-1"
    done = await setup.http.post(f"{base}/promote", params={"all": "true"}, headers=setup.op)
    assert done.json()["deployment"]["state"] == "succeeded" and setup.requests("Promote")[1].all

    undo = await setup.http.post(f"{base}/undo", headers=setup.op)
    assert undo.status_code == 200, undo.text
    assert (undo.json()["deployment"]["id"], undo.json()["deployment"]["to_build"]) == ("web-2", "web-41")
    aborted = await setup.http.post(f"{base}/abort", json={"reason": "no"}, headers=setup.op)
    assert (aborted.json()["deployment"]["state"], aborted.json()["deployment"]["ended"]) == ("aborted", True)


async def test_the_stream_follows_the_deployment_until_it_ends(setup: Setup) -> None:
    await setup.deploy("web", {"build": "web-42"})
    book = setup.deployer.book
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async with setup.http.stream("GET", "/v1/groups/web/deployment/stream", headers=setup.viewer) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            async for msg in sse_messages(r):
                if msg.event == "deployment":
                    seen.append(json.loads(msg.data))
                    if len(seen) == 1:  # the state now came: move the deployment on
                        await book.change(book.deployments["web-1"], lambda d: setattr(d, "new_ready", 2))
                    elif len(seen) == 2:
                        ended = await setup.http.post(
                            "/v1/groups/web/deployment/promote?all=true", headers=setup.op
                        )
                        assert ended.status_code == 200

    await asyncio.wait_for(follow(), DEADLINE)  # returns only because the stream ends with the deployment
    assert [(d["new_ready"], d["state"]) for d in seen] == [(0, "running"), (2, "running"), (4, "succeeded")]
    assert seen[-1]["ended"]

    none = await setup.http.get("/v1/groups/api/deployment/stream", headers=setup.viewer)
    assert none.status_code == 404 and none.json()["error"] == "not_found"


async def test_a_deployer_that_is_down_is_a_quick_503(fresh_stream: str, tmp_path: Path) -> None:
    stack = await start_stack(fresh_stream, tmp_path, deployer_timeout_seconds=30)  # nothing at its address
    try:
        for resp in await asyncio.wait_for(
            asyncio.gather(  # well within the 30 s deadline: a refused port is answered at once
                stack.client.post("/v1/groups/web/deploy", json={"build": "web-42"}, headers=stack.operator),
                stack.client.get("/v1/groups/web/deployment", headers=stack.viewer),
                stack.client.get("/v1/groups/web/deployment/stream", headers=stack.viewer),
                stack.client.post("/v1/groups/web/deployment/abort", headers=stack.operator),
            ),
            10,
        ):
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "unavailable"
            assert resp.json()["message"].startswith("the deployer (127.0.0.1:")
            assert "BAY_DEPLOYER_ADDR" in resp.json()["hint"] and "bay up" in resp.json()["hint"]
            assert resp.headers["Retry-After"] == "1"
        health = (await stack.client.get("/healthz")).json()
        assert health["deployer"] is False and health["status"] == "ok"  # informative, like the schedulers
    finally:
        await stack.stop()


async def test_health_reports_the_deployer(setup: Setup) -> None:
    health = (await setup.http.get("/healthz")).json()
    assert health["deployer"] is True and health["status"] == "ok"


async def test_the_document_describes_the_routes(setup: Setup) -> None:
    doc = (await setup.http.get("/openapi.json")).json()
    deploy = doc["paths"]["/v1/groups/{name}/deploy"]["post"]
    assert (
        deploy["x-bay-role"] == "operator" and "201" in deploy["responses"] and "409" in deploy["responses"]
    )
    assert deploy["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DeployRequest")
    schemas = doc["components"]["schemas"]
    assert {
        "DeployRequest",
        "Strategy",
        "CanaryStep",
        "Deployment",
        "DeploymentReply",
        "ControlRequest",
    } <= set(schemas)
    assert schemas["Strategy"]["properties"]["kind"]["anyOf"][0]["enum"] == [
        "rolling",
        "recreate",
        "canary",
        "blue-green",
    ]
    for action in ("pause", "resume", "promote", "abort", "undo"):
        assert doc["paths"][f"/v1/groups/{{name}}/deployment/{action}"]["post"]["x-bay-role"] == "operator"
    assert doc["paths"]["/v1/groups/{name}/deployment/stream"]["get"]["x-bay-role"] == "viewer"
