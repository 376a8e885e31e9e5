"""Server-sent events: a pure line parser, and a follower that resumes with ``Last-Event-ID``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.cli.client import GatewayClient
from services.cli.errors import CliError, ExitCode


@dataclass(frozen=True)
class SseMessage:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseParser:
    """Feed lines (without their line break); a blank line completes a message (WHATWG rules)."""

    _id: str | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseMessage | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            msg = SseMessage(self._id, self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return msg
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value  # the last id persists across messages, as in browsers
        return None


def parse(lines: Iterable[str]) -> Iterator[SseMessage]:
    parser = SseParser()
    for line in lines:
        msg = parser.feed(line.rstrip("\r"))
        if msg is not None:
            yield msg


def follow(
    client: GatewayClient,
    params: dict[str, Any],
    last_id: int | None,
    on_drop: Callable[[str, float], None],
    *,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Generator[dict[str, Any], None, None]:
    """Events from the stream (``params``: its query, e.g. ``subject``), forever; a dropped
    connection is reopened after the last event seen.

    The first connection must succeed (else :class:`CliError`); later failures are retried with
    backoff, telling ``on_drop(reason, delay)``.
    """
    delay = 0.5
    first = True
    while True:
        try:
            resp = client.event_stream(params, last_id)
        except CliError as exc:
            if first or exc.code != ExitCode.UNAVAILABLE:
                raise
            on_drop(exc.message, delay)
            sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        first = False
        try:
            for msg in parse(resp.iter_lines()):
                if msg.event in ("ping", "keepalive") or not msg.data:
                    continue
                try:
                    event = msg.json()
                except ValueError:
                    continue  # not an event (a proxy's or a newer gateway's message): skip it
                if msg.id is not None and msg.id.isdigit():
                    last_id = int(msg.id)
                elif isinstance(event, dict) and "sequence" in event:
                    last_id = int(event["sequence"])
                delay = 0.5
                yield event
            reason = "the gateway closed the event stream"
        except httpx.TransportError as exc:
            reason = f"the event stream broke ({type(exc).__name__})"
        finally:
            resp.close()
        on_drop(reason, delay)
        sleep(delay)
        delay = min(delay * 2, max_delay)
