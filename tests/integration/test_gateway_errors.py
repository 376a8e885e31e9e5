"""Every bad request gets the one error shape, and appends nothing to the event log."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.integration.gateway_harness import Stack, start_gateway, start_stack

MIB = 1024 * 1024


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    s = await start_stack(fresh_stream, tmp_path)
    resp = await s.client.post("/v1/groups", json={"name": "web", "cmd": "sleep 1000"}, headers=s.operator)
    assert resp.status_code == 201
    yield s
    await s.stop()


def _json(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


def _yaml(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"Content-Type": "application/yaml"}}


async def _chunks(total: int) -> AsyncIterator[bytes]:
    """A body sent chunked, without Content-Length: the limit must hold on the bytes themselves."""
    yield b'{"name": "web", "cmd": "'
    sent = 0
    while sent < total:
        yield b"x" * 65536
        sent += 65536
    yield b'"}'


# (method, path, request kwargs, status, error code, violation fields or a text the message must hold)
BAD: list[tuple[str, str, dict[str, Any], int, str, Any]] = [
    (
        "POST",
        "/v1/groups",
        _json('{"name": "x", "cmd": '),
        400,
        "malformed_body",
        "JSON at line 1, column 22",
    ),
    ("POST", "/v1/groups", _yaml("name: x\ncmd: [unclosed\n"), 400, "malformed_body", "YAML at line 3"),
    ("POST", "/v1/groups", _yaml("a: &a [x]\nb: *a\n"), 400, "malformed_body", "aliases"),
    ("POST", "/v1/groups", _json(""), 400, "malformed_body", "empty"),
    (
        "POST",
        "/v1/groups",
        {"json": {"name": "x", "cmd": "y", "colour": "red"}},
        422,
        "validation_failed",
        ["colour"],
    ),
    ("POST", "/v1/groups", {"json": {"name": "Web_1", "cmd": "y"}}, 422, "validation_failed", ["name"]),
    (
        "POST",
        "/v1/groups",
        {"json": {"name": "x", "cmd": "y", "instances": -1}},
        422,
        "validation_failed",
        ["instances"],
    ),
    (
        "POST",
        "/v1/groups",
        {"json": {"name": "x", "cmd": "y", "ports": [{"name": "HTTP"}]}},
        422,
        "validation_failed",
        ["ports.0.name"],
    ),
    (
        "POST",
        "/v1/groups",
        {"json": {"name": "x", "cmd": "y", "cluster": "mars"}},
        422,
        "validation_failed",
        ["cluster"],
    ),
    ("POST", "/v1/groups", {"json": ["not", "a", "spec"]}, 422, "validation_failed", None),
    ("PUT", "/v1/groups/web", {"json": {"name": "api", "cmd": "y"}}, 422, "validation_failed", ["name"]),
    (
        "PUT",
        "/v1/groups/web",
        {"json": {"cmd": "y"}, "headers": {"If-Match": "yesterday"}},
        422,
        "validation_failed",
        ["If-Match"],
    ),
    ("POST", "/v1/groups/web/scale", {"json": {"instances": -3}}, 422, "validation_failed", ["instances"]),
    (
        "POST",
        "/v1/groups/web/scale",
        {"json": {"instances": "many"}},
        422,
        "validation_failed",
        ["instances"],
    ),
    ("POST", "/v1/groups/web/rollback", {"json": {"version": 0}}, 422, "validation_failed", ["version"]),
    (
        "POST",
        "/v1/groups",
        {"content": b"x" * (MIB + 1), "headers": {"Content-Type": "application/json"}},
        413,
        "body_too_large",
        "limit",
    ),
    (
        "POST",
        "/v1/groups",
        {"content": _chunks(MIB + 1), "headers": {"Content-Type": "application/json"}},
        413,
        "body_too_large",
        "limit",
    ),
    (
        "POST",
        "/v1/groups",
        {"content": b"name=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "unsupported_media_type",
        "application/x-www-form-urlencoded",
    ),
    (
        "POST",
        "/v1/groups",
        {"content": b"<group/>", "headers": {"Content-Type": "text/xml"}},
        415,
        "unsupported_media_type",
        "text/xml",
    ),
    ("GET", "/v1/events", {"params": {"limit": "lots"}}, 422, "validation_failed", ["limit"]),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "detail"), BAD)
async def test_bad_request_appends_nothing(
    stack: Stack, method: str, path: str, kwargs: dict[str, Any], status: int, code: str, detail: Any
) -> None:
    before = await stack.last_sequence()
    kwargs = dict(kwargs)
    headers = {**stack.operator, **kwargs.pop("headers", {})}
    resp = await stack.client.request(method, path, headers=headers, **kwargs)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code and body["message"] and body["hint"]
    if status == 422:
        assert body["violations"] and all(set(v) == {"field", "description"} for v in body["violations"])
        if detail is not None:
            assert [v["field"] for v in body["violations"]] == detail
    else:
        assert "violations" not in body
        assert detail in body["message"]
    assert await stack.last_sequence() == before


async def test_registry_down_is_a_quick_503(stack: Stack) -> None:
    before = await stack.last_sequence()
    await stack.stop_registry()
    limit = stack.gateway.settings.registry_timeout_seconds + 1
    for method, path, body in [
        ("GET", "/v1/groups", None),
        ("POST", "/v1/groups", {"name": "api", "cmd": "y"}),
        ("POST", "/v1/groups/web/scale", {"instances": 4}),
    ]:
        started = time.monotonic()
        resp = await stack.client.request(method, path, json=body, headers=stack.operator)
        assert time.monotonic() - started < limit
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"] == "unavailable" and "registry" in resp.json()["message"]
        assert resp.json()["hint"] and resp.headers["Retry-After"]
    health = await stack.client.get("/healthz")
    body = health.json()
    assert body.pop("schedulers").keys() == {"local"}
    assert body.pop("dns") is False  # reported too; this stack runs no DNS service
    assert body.pop("deployer") is False  # and no deployer
    assert body.pop("autoscaler") is False  # nor autoscaler
    assert body.pop("folds") == {}  # the registry does not answer
    assert body == {"status": "degraded", "nats": True, "registry": False}
    assert await stack.last_sequence() == before


async def test_registry_that_never_answers_is_a_503_at_the_deadline(
    fresh_stream: str, tmp_path: Path
) -> None:
    """A registry port that accepts connections but never speaks: the deadline, not a hang."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        gw = await start_gateway(
            fresh_stream, tmp_path, silent.getsockname()[1], registry_timeout_seconds=0.5
        )
        try:
            resp = await asyncio.wait_for(
                gw.client.get("/v1/groups", headers={"Authorization": "Bearer x"}), 5
            )
            assert resp.status_code == 401  # the token is checked first, without the registry
            token = gw.backends.tokens.create("ops", "operator")
            started = time.monotonic()
            resp = await asyncio.wait_for(
                gw.client.get("/v1/groups", headers={"Authorization": f"Bearer {token}"}), 5
            )
            assert resp.status_code == 503, resp.text
            assert time.monotonic() - started < 0.5 + 1
            assert "did not answer within 0.5 s" in resp.json()["message"]
        finally:
            await gw.stop()
