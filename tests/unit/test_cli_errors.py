"""The CLI's exit codes and how a gateway error body becomes a message (no network)."""

from __future__ import annotations

import json

import httpx
import pytest

from services.cli.client import GatewayClient
from services.cli.errors import EPILOG, CliError, ExitCode, error_from_response, exit_code_for_status


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, ExitCode.OK),
        (201, ExitCode.OK),
        (400, ExitCode.USAGE),
        (422, ExitCode.USAGE),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.CONFLICT),
        (412, ExitCode.CONFLICT),
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (503, ExitCode.UNAVAILABLE),
        (502, ExitCode.UNAVAILABLE),
        (504, ExitCode.UNAVAILABLE),
        (500, ExitCode.USAGE),
    ],
)
def test_status_maps_to_exit_code(status: int, code: ExitCode) -> None:
    assert exit_code_for_status(status) == code


def test_the_help_epilog_documents_every_exit_code() -> None:
    for code in ExitCode:
        assert f"{int(code)} " in EPILOG


def test_gateway_error_body_keeps_message_hint_and_violations() -> None:
    body = json.dumps(
        {
            "error": "validation_failed",
            "message": "spec.instances: must be 0 or more",
            "hint": "fix the fields named in `violations`",
            "violations": [{"field": "spec.instances", "description": "must be 0 or more"}],
        }
    ).encode()
    err = error_from_response(422, body)
    assert err.code == ExitCode.USAGE
    assert err.message == "spec.instances: must be 0 or more"
    assert err.hint.startswith("fix the fields")
    assert [(v.field, v.description) for v in err.violations] == [("spec.instances", "must be 0 or more")]


def test_fastapi_validation_detail_becomes_violations() -> None:
    body = json.dumps({"detail": [{"loc": ["body", "instances"], "msg": "field required"}]}).encode()
    err = error_from_response(422, body)
    assert [(v.field, v.description) for v in err.violations] == [("body.instances", "field required")]


def test_a_body_that_is_not_json_still_says_the_status() -> None:
    err = error_from_response(502, b"<html>Bad Gateway</html>", "http://gw/v1/groups")
    assert err.code == ExitCode.UNAVAILABLE
    assert "HTTP 502" in err.message and "Bad Gateway" in err.message


def _client(handler: object) -> GatewayClient:
    return GatewayClient("http://gw.test", "tok", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_client_sends_the_token_and_raises_the_mapped_error() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            404, json={"error": "not_found", "message": "group 'x' does not exist", "hint": "h"}
        )

    with pytest.raises(CliError) as info, _client(handler) as gw:
        gw.get_group("x")
    assert info.value.code == ExitCode.NOT_FOUND
    assert "does not exist" in info.value.message
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert seen[0].url.path == "/v1/groups/x"


def test_mutations_carry_an_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"group": {"spec": {"instances": 3}}, "sequence": 9, "duplicate": False}
        )

    with _client(handler) as gw:
        gw.scale("web", 3, "load")
    assert seen[0].headers["idempotency-key"]
    assert json.loads(seen[0].content) == {"instances": 3, "reason": "load"}


def test_connection_refused_is_unavailable_with_a_hint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(CliError) as info, _client(handler) as gw:
        gw.list_groups()
    assert info.value.code == ExitCode.UNAVAILABLE
    assert info.value.message == "gateway not reachable at http://gw.test: is `bay up` running?"


def test_events_follow_next_after_until_it_is_null() -> None:
    pages = {
        None: {"events": [{"sequence": 1}, {"sequence": 2}], "next_after": 2},
        "2": {"events": [{"sequence": 3}], "next_after": None},
    }
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        asked.append(after)
        assert request.url.params.get("type") == "GroupScaled"
        return httpx.Response(200, json=pages[after])

    with _client(handler) as gw:
        got = [e["sequence"] for e in gw.events({"type": "GroupScaled", "aggregate_id": ""})]
    assert got == [1, 2, 3]
    assert asked == [None, "2"]
