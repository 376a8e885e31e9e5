"""A lean HTTP/1.1 client for the master's and agents' endpoints: keep-alive, pipelined, on the loop.

Why not httpx: the backend makes thousands of small requests (acknowledgements, statistics of hundreds
of agents), and httpx' connection pool costs far more CPU per request than the request itself (its
request-to-connection assignment is quadratic in the requests waiting). Here one connection per
endpoint writes every request made in one loop iteration at once and reads the answers in order;
Mesos (libprocess) answers pipelined requests in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import NamedTuple
from urllib.parse import urlencode

from libs.addresses import parse_host_port
from libs.errors import ValidationFailed


class HttpError(Exception):
    """The connection could not be made, broke, or the answer was not HTTP."""


class Answer(NamedTuple):
    status: int
    body: bytes


def request(
    method: str, host: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(host: str, path: str, params: dict[str, str | int] | None = None) -> bytes:
    return request("GET", host, f"{path}?{urlencode(params)}" if params else path)


class Connection:
    """One keep-alive connection: requests written in batches, answers read in order by one task."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._waiting: deque[asyncio.Future[Answer]] = deque()
        self._buffer: list[bytes] = []
        self.closed = False
        self._task = asyncio.create_task(self._read_answers())

    @classmethod
    async def open(cls, address: str, timeout: float) -> Connection:
        try:
            host, port = parse_host_port(address, field="agent address")
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError, ValidationFailed) as exc:
            raise HttpError(f"cannot connect to {address}: {exc or type(exc).__name__}") from exc
        return cls(reader, writer)

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        if self.closed:
            answer.set_exception(HttpError("connection closed"))
            return answer
        if not self._buffer:
            loop.call_soon(self._flush)
        self._buffer.append(data)
        self._waiting.append(answer)
        return answer

    def _flush(self) -> None:
        if self._buffer and not self.closed:
            self._writer.write(b"".join(self._buffer))
        self._buffer.clear()

    async def _read_answers(self) -> None:
        try:
            while True:
                head = await self._reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await self._body(headers)
                answer = self._waiting.popleft() if self._waiting else None
                if answer is not None and not answer.done():
                    answer.set_result(Answer(status, body))
                if headers.get("connection", "").lower() == "close":
                    self.close("the server closed the connection")
                    return
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            IndexError,
        ) as exc:
            self.close(f"connection broke: {exc!r}")
        except asyncio.CancelledError:
            self.close("connection closed")
            raise

    async def _body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16):
                body += (await self._reader.readexactly(size + 2))[:-2]
            await self._reader.readuntil(b"\r\n")
            return body
        length = int(headers.get("content-length", "0") or 0)
        return await self._reader.readexactly(length) if length else b""

    def close(self, why: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        self._task.cancel()
        self._writer.close()
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(HttpError(why))


class Pool:
    """One connection per address (host:port), made when first needed and again after it broke."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._conns: dict[str, Connection] = {}
        self._opening: dict[str, asyncio.Task[Connection]] = {}

    async def connection(self, address: str) -> Connection:
        conn = self._conns.get(address)
        if conn is not None and not conn.closed:
            return conn
        opening = self._opening.get(address)
        if opening is None:
            opening = self._opening[address] = asyncio.create_task(Connection.open(address, self.timeout))
        try:
            conn = await asyncio.shield(opening)
        finally:
            if self._opening.get(address) is opening and opening.done():
                del self._opening[address]
        self._conns[address] = conn
        return conn

    def send_nowait(self, address: str, data: bytes) -> asyncio.Future[Answer] | None:
        """Queue a request on a live connection, unbounded in time (None: no connection yet)."""
        conn = self._conns.get(address)
        return conn.send(data) if conn is not None and not conn.closed else None

    async def fetch(self, address: str, data: bytes) -> Answer:
        """Send one request and wait (bounded) for its answer; HttpError if there is none."""
        conn = await self.connection(address)
        try:
            return await asyncio.wait_for(conn.send(data), self.timeout)
        except TimeoutError:
            conn.close(f"no answer from {address} within {self.timeout:g}s")
            raise HttpError(f"no answer from {address} within {self.timeout:g}s") from None

    def drop(self, address: str, why: str) -> None:
        conn = self._conns.pop(address, None)
        if conn is not None:
            conn.close(why)

    async def close(self) -> None:
        for task in self._opening.values():
            task.cancel()
        for task in self._opening.values():
            with contextlib.suppress(BaseException):
                conn = await task
                conn.close()
        self._opening.clear()
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
