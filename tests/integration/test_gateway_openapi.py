"""The OpenAPI document a real gateway serves says what the gateway does: which operations need the
bearer token, which methods each path serves (and what a 405's ``Allow`` says), and which values
of If-Match, a task state filter and the events' times it takes. A client generated from the
document alone (as the Node.js one was) must neither send what the gateway refuses nor be unable
to send what it takes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.scheduler.ports import TaskState
from tests.integration.gateway_harness import Stack, serve, start_stack

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
PATH_VALUES = {
    "name": "web",
    "task_id": "web.0",
    "service": "web",
    "build_id": "web-1",
    "deployment_id": "web-1",
}


@pytest_asyncio.fixture
async def served(fresh_stream: str, tmp_path: Path) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    stack = await start_stack(fresh_stream, tmp_path)
    made = await stack.client.post(
        "/v1/groups", json={"name": "web", "cmd": "sleep 1000"}, headers=stack.operator
    )
    assert made.status_code == 201
    server = await serve(stack.gateway)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield stack, http
    await server.stop()
    await stack.stop()


async def openapi(http: httpx.AsyncClient) -> dict[str, Any]:
    resp = await http.get("/openapi.json")
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.json()
    return doc


def parameter(doc: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    params = doc["paths"][path][method]["parameters"]
    found: dict[str, Any] = next(p for p in params if p["name"] == name)
    return found


def schema_allows(schema: dict[str, Any], value: str) -> bool:
    """Whether a string parameter value satisfies the schema (the parts the gateway's use)."""
    if "anyOf" in schema:
        return any(schema_allows(s, value) for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("type") != "string":
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "minLength" in schema and len(value) < schema["minLength"]:
        return False
    return "pattern" not in schema or re.search(schema["pattern"], value) is not None


def violation_fields(resp: httpx.Response) -> list[str]:
    return [v["field"] for v in resp.json().get("violations") or []]


async def test_bearer_scheme_is_declared_and_is_what_the_gateway_asks_for(
    served: tuple[Stack, httpx.AsyncClient],
) -> None:
    stack, http = served
    doc = await openapi(http)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, operations in doc["paths"].items():
        url = path.format(**PATH_VALUES)
        for method, op in operations.items():
            # without a token: 401 exactly where the document requires one (checked before any
            # body is read or any stream opened)
            resp = await http.request(method.upper(), url)
            if op.get("security"):
                assert op["security"] == [{"bearer": []}], (method, path)
                assert op["x-bay-role"] in ("viewer", "operator")
                assert resp.status_code == 401, (method, path, resp.status_code)
                assert resp.headers["WWW-Authenticate"] == "Bearer"
            else:
                assert resp.status_code != 401, (method, path)
            if op.get("x-bay-role") == "operator":  # and a viewer's token is not enough
                viewer = await http.request(method.upper(), url, headers=stack.viewer)
                assert viewer.status_code == 403, (method, path)
    assert "security" not in doc["paths"]["/healthz"]["get"]


async def test_anonymous_reads_make_the_token_optional_for_reads_only(
    fresh_stream: str, tmp_path: Path
) -> None:
    stack = await start_stack(fresh_stream, tmp_path, anonymous_read=True)
    try:
        doc = (await stack.client.get("/openapi.json")).json()
        groups = doc["paths"]["/v1/groups"]
        assert groups["get"]["security"] == [{"bearer": []}, {}]  # {}: may be sent without
        assert groups["post"]["security"] == [{"bearer": []}]
        # the audit trail is the gateway's own (the registry harness keeps its tokens required)
        assert doc["paths"]["/v1/events"]["get"]["security"] == [{"bearer": []}, {}]
        assert (await stack.client.get("/v1/events")).status_code == 200
        assert (await stack.client.post("/v1/groups", json={})).status_code == 401
    finally:
        await stack.stop()


async def test_each_path_serves_what_it_declares_and_allow_names_it_all(
    served: tuple[Stack, httpx.AsyncClient],
) -> None:
    _, http = served
    doc = await openapi(http)
    for path, operations in doc["paths"].items():
        url = path.format(**PATH_VALUES)
        declared = {m.upper() for m in operations}
        for method in METHODS:
            resp = await http.request(method, url)
            if method in declared:
                assert resp.status_code != 405, (method, path)
                continue
            assert resp.status_code == 405, (method, path, resp.status_code)
            allow = {m.strip() for m in resp.headers["Allow"].split(",")}
            assert allow == declared, (method, path)
            if method != "HEAD":  # a HEAD answer has no body
                assert resp.json()["error"] == "method_not_allowed"
                assert all(m in resp.json()["message"] for m in declared)


@pytest.mark.parametrize(
    ("value", "taken"),
    # (a value of blanks only cannot be sent: HTTP drops the blanks around a value, leaving "")
    [("", False), ("0", False), ("yesterday", False), ('"1"', True), ("1", True),
     ('W/"1"', True), ("*", True)],
)  # fmt: skip
async def test_if_match_takes_what_its_schema_allows(
    served: tuple[Stack, httpx.AsyncClient], value: str, taken: bool
) -> None:
    stack, http = served
    doc = await openapi(http)
    for method, path in (("put", "/v1/groups/{name}"), ("post", "/v1/groups/{name}/scale")):
        assert parameter(doc, path, method, "If-Match")["in"] == "header"
        schema = parameter(doc, path, method, "If-Match")["schema"]
        assert schema_allows(schema, value) is taken, (path, value)
    resp = await http.put(
        "/v1/groups/web", json={"cmd": "sleep 1000"}, headers={**stack.operator, "If-Match": value}
    )
    if taken:
        assert resp.status_code == 200, resp.text
    else:
        assert resp.status_code == 422 and violation_fields(resp) == ["If-Match"], resp.text


async def test_an_empty_idempotency_key_is_refused_as_its_schema_says(
    served: tuple[Stack, httpx.AsyncClient],
) -> None:
    value = ""
    stack, http = served
    schema = parameter(await openapi(http), "/v1/groups/{name}", "put", "Idempotency-Key")["schema"]
    assert not schema_allows(schema, value) and schema_allows(schema, "k-1")
    headers = {**stack.operator, "Idempotency-Key": value}
    resp = await http.put("/v1/groups/web", json={"cmd": "sleep 1000"}, headers=headers)
    assert resp.status_code == 422 and violation_fields(resp) == ["Idempotency-Key"]


async def test_task_state_filter_is_the_enum_the_gateway_takes(
    served: tuple[Stack, httpx.AsyncClient],
) -> None:
    stack, http = served
    schema = parameter(await openapi(http), "/v1/groups/{name}/tasks", "get", "state")["schema"]
    enum = next(s["enum"] for s in schema["anyOf"] if "enum" in s)
    assert set(enum) == {s.value for s in TaskState}  # the scheduler's states, all of them
    for value in ("SLEEPY", "running", ""):
        assert not schema_allows(schema, value)
        resp = await http.get("/v1/groups/web/tasks", params={"state": value}, headers=stack.viewer)
        # refused by the gateway itself, naming the field (no scheduler runs here to be asked)
        assert resp.status_code == 422 and violation_fields(resp) == ["state"], (value, resp.text)
        assert "RUNNING" in resp.json()["violations"][0]["description"]
    for value in enum:
        resp = await http.get("/v1/groups/web/tasks", params={"state": value}, headers=stack.viewer)
        assert resp.status_code == 503, (value, resp.text)  # past validation: the scheduler is down


@pytest.mark.parametrize(
    ("value", "taken"),
    [("0.5", False), ("1714564800", False), ("2024-05-01", False), ("yesterday", False),
     ("2024-05-01T12:00:00Z", True), ("2024-05-01T12:00:00.250+02:00", True),
     ("2999-01-01T00:00:00", True), ("2024-05-01T12:00", True)],
)  # fmt: skip
async def test_event_times_take_what_their_schema_allows(
    served: tuple[Stack, httpx.AsyncClient], value: str, taken: bool
) -> None:
    stack, http = served
    doc = await openapi(http)
    for name in ("since", "until"):
        schema = parameter(doc, "/v1/events", "get", name)["schema"]
        declared = next(s for s in schema["anyOf"] if s.get("type") == "string")
        assert declared["format"] == "date-time"
        assert schema_allows(schema, value) is taken, (name, value)
        resp = await http.get("/v1/events", params={name: value}, headers=stack.viewer)
        if taken:
            assert resp.status_code == 200, resp.text
        else:
            assert resp.status_code == 422 and violation_fields(resp) == [name], resp.text
            assert "2024-05-01T12:00:00Z" in resp.json()["violations"][0]["description"]
