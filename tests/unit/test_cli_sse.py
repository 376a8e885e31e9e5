"""Server-sent events: the line parser, and following a stream that drops (fake transport, no network)."""

from __future__ import annotations

import json
from collections.abc import Generator

import httpx
import pytest

from services.cli import sse
from services.cli.client import GatewayClient
from services.cli.errors import CliError, ExitCode


def test_parser_builds_messages_from_fields() -> None:
    lines = [
        ": keep-alive",
        "id: 7",
        "event: GroupScaled",
        'data: {"sequence":',
        "data:  7}",
        "",
        "",
        "data: no id here",
        "",
    ]
    msgs = list(sse.parse(lines))
    assert msgs[0] == sse.SseMessage("7", "GroupScaled", '{"sequence":\n 7}')
    assert msgs[0].json() == {"sequence": 7}
    # the last id persists; the event name does not
    assert msgs[1] == sse.SseMessage("7", "message", "no id here")


def test_parser_ignores_carriage_returns_and_unknown_fields() -> None:
    msgs = list(sse.parse(["id: 1\r", "retry: 100\r", "data: x\r", "\r"]))
    assert msgs == [sse.SseMessage("1", "message", "x")]


def _sse(*seqs: int) -> bytes:
    out = []
    for s in seqs:
        body = json.dumps({"sequence": s, "type": "GroupScaled"})
        out.append(f"id: {s}\nevent: GroupScaled\ndata: {body}\n\n")
    return "".join(out).encode()


def test_follow_resumes_after_the_last_event_seen() -> None:
    """The first connection ends after events 4 and 5; the second must ask for what follows 5."""
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        assert request.url.path == "/v1/events/stream"
        if len(asked) == 1:
            return httpx.Response(200, content=_sse(4, 5), headers={"content-type": "text/event-stream"})
        if len(asked) == 2:
            return httpx.Response(503, json={"error": "unavailable", "message": "NATS is down", "hint": ""})
        return httpx.Response(200, content=_sse(6), headers={"content-type": "text/event-stream"})

    drops: list[tuple[str, float]] = []
    slept: list[float] = []
    gw = GatewayClient("http://gw.test", "t", transport=httpx.MockTransport(handler))
    stream: Generator[dict[str, object], None, None] = sse.follow(
        gw, {"type": "GroupScaled"}, 3, lambda r, d: drops.append((r, d)), sleep=slept.append
    )
    got = [next(stream)["sequence"] for _ in range(3)]
    stream.close()
    assert got == [4, 5, 6]
    assert asked == ["3", "5", "5"]
    assert [r for r, _ in drops] == ["the gateway closed the event stream", "NATS is down"]
    assert slept == [0.5, 1.0]  # backoff doubles while the gateway is unavailable


def test_follow_fails_at_once_if_the_first_connection_fails() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gw = GatewayClient("http://gw.test", "t", transport=httpx.MockTransport(handler))
    with pytest.raises(CliError) as info:
        next(sse.follow(gw, {}, None, lambda r, d: None, sleep=lambda d: None))
    assert info.value.code == ExitCode.UNAVAILABLE
