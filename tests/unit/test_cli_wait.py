"""``bay scale --wait``: when a scale is done, and following the status stream (or polling when it
breaks) within a deadline. A fake transport stands for the gateway: no network."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.cli.client import GatewayClient
from services.cli.errors import CliError, ExitCode
from services.cli.wait import Target, settled, wait_settled


def status(**kw: Any) -> dict[str, Any]:
    return {"desired": 5, "ready": 5, "staged": 0, "killing": 0, "running": 5, "sequence": 10, **kw}


@pytest.mark.parametrize(
    ("st", "done"),
    [
        (status(), True),
        (status(ready=4), False),
        (status(staged=1), False),  # a sixth being launched to replace one
        (status(killing=1), False),  # a surplus task still going
        (status(desired=3, ready=3, sequence=9), False),  # before the scale reached the scheduler
        (status(desired=7, ready=7, sequence=12), True),  # a later scale by someone else: its count
        (status(sequence=4), True),  # scaled to the count it had: no newer status comes
    ],
)
def test_settled(st: dict[str, Any], done: bool) -> None:
    assert settled(st, Target(instances=5, sequence=10)) is done


def _sse(*statuses: dict[str, Any]) -> bytes:
    return "".join(f": hi\n\nevent: status\ndata: {json.dumps(s)}\n\n" for s in statuses).encode()


def _gateway(stream: httpx.Response, polled: list[dict[str, Any]]) -> tuple[GatewayClient, list[str]]:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v1/groups/web/status/stream":
            return stream
        assert request.url.path == "/v1/groups/web/status"
        return httpx.Response(200, json=polled.pop(0) if len(polled) > 1 else polled[0])

    return GatewayClient("http://gw.test", "t", transport=httpx.MockTransport(handler)), asked


def test_waits_through_the_stream_until_settled() -> None:
    stream = httpx.Response(200, content=_sse(status(ready=2, staged=3), status()))
    gw, asked = _gateway(stream, [status(ready=0)])
    seen: list[dict[str, Any]] = []
    ok, last = wait_settled(gw, "web", Target(5, 10), 5.0, seen.append)
    assert ok and last == status()
    assert [s["ready"] for s in seen] == [2, 5]
    assert asked == ["/v1/groups/web/status/stream"]


def test_a_broken_stream_falls_back_to_polling() -> None:
    stream = httpx.Response(200, content=_sse(status(ready=1)))  # then the stream ends
    gw, asked = _gateway(stream, [status(ready=3), status()])
    seen: list[dict[str, Any]] = []
    ok, _ = wait_settled(gw, "web", Target(5, 10), 5.0, seen.append)
    assert ok and [s["ready"] for s in seen] == [1, 3, 5]
    assert asked == ["/v1/groups/web/status/stream", "/v1/groups/web/status", "/v1/groups/web/status"]


def test_gives_up_at_the_deadline_with_the_last_status() -> None:
    stream = httpx.Response(200, content=_sse(status(ready=0, desired=50)))
    gw, _ = _gateway(stream, [status(ready=0, desired=50)])
    ok, last = wait_settled(gw, "web", Target(50, 10), 0.5, lambda s: None)
    assert not ok and last is not None and last["desired"] == 50


def unavailable() -> httpx.Response:
    return httpx.Response(
        503, json={"error": "unavailable", "message": "scheduler of cluster 'local'", "hint": "start it"}
    )


def test_an_unavailable_status_is_ridden_out_until_it_answers() -> None:
    answers = [unavailable(), unavailable(), httpx.Response(200, json=status(ready=2)), unavailable()]
    answers += [httpx.Response(200, json=status())]
    heard: list[CliError] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream"):
            return unavailable()
        return answers.pop(0)

    gw = GatewayClient("http://gw.test", "t", transport=httpx.MockTransport(handler))
    seen: list[dict[str, Any]] = []
    ok, last = wait_settled(gw, "web", Target(5, 10), 10.0, seen.append, on_unavailable=heard.append)
    assert ok and last == status() and [s["ready"] for s in seen] == [2, 5]
    assert len(heard) == 4 and all(e.code == ExitCode.UNAVAILABLE for e in heard)


def test_unavailable_until_the_deadline_gives_up_with_the_last_status() -> None:
    answers = [httpx.Response(200, json=status(ready=1))]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream"):
            return unavailable()
        return answers.pop(0) if answers else unavailable()

    gw = GatewayClient("http://gw.test", "t", transport=httpx.MockTransport(handler))
    ok, last = wait_settled(gw, "web", Target(5, 10), 0.5, lambda s: None)
    assert not ok and last == status(ready=1)


def test_an_error_that_is_not_unavailability_ends_the_wait() -> None:
    stream = httpx.Response(
        404, json={"error": "not_found", "message": "group 'web' does not exist", "hint": ""}
    )
    gw, _ = _gateway(stream, [status()])
    with pytest.raises(CliError) as info:
        wait_settled(gw, "web", Target(5, 10), 5.0, lambda s: None)
    assert info.value.code == ExitCode.NOT_FOUND and "web" in info.value.message
