"""A small HTTP/1.1 server on asyncio streams: keep-alive for plain calls, hand-over for streams.

aiohttp is not a dependency and the standard library's server is thread-based; the master needs
keep-alive (pymesos re-uses one connection for its calls) and long-lived chunked responses
(SUBSCRIBE), which this covers in a few lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    port: int  # the local port the request came in on (the simulator has two masters)
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    query: dict[str, str] = field(default_factory=dict)  # the last value of each parameter

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        return cls(status, message.encode(), {"Content-Type": "text/plain; charset=utf-8"})


class Streaming:
    """Returned by a handler that took over the connection (it closes it itself)."""


STREAMING = Streaming()
Handler = Callable[[Request], Awaitable[Response | Streaming]]


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    request_line = lines[0].split(" ", 2)
    if len(request_line) != 3:  # not HTTP (a stray client): close, as a master would
        return None
    method, target, _version = request_line
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    url = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    return method, url.path, headers, body, query


async def _serve_connection(
    handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    port = writer.get_extra_info("sockname")[1]
    try:
        while True:
            parsed = await _read_request(reader)
            if parsed is None:
                break
            method, path, headers, body, query = parsed
            result = await handler(Request(method, path, headers, body, port, reader, writer, query))
            if isinstance(result, Streaming):
                return  # the handler owns the connection now
            close = headers.get("connection", "").lower() == "close"
            out = {**result.headers, "Content-Length": str(len(result.body))}
            if close:
                out["Connection"] = "close"
            writer.write(head(result.status, out) + result.body)
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def start(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Listen on host:port (0: a free port); each connection is served by :func:`_serve_connection`."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(handler, reader, writer)

    return await asyncio.start_server(on_connect, host, port)
