"""The plain HTTP listener of a process's ``/metrics``: Prometheus' text format, no token (nothing
secret is in it), 127.0.0.1 unless told otherwise.

It is written for clients that misbehave, since anyone who reaches the port may connect: a request's
head must arrive whole within ``header_timeout`` seconds (a client dripping it a byte at a time is cut
off) and fit in :data:`MAX_HEAD` bytes (a longer line is answered 414 or 431, not read on); an answer
the client does not read is given ``write_timeout`` seconds; every answer closes its connection. At
most ``max_clients`` connections are held: one more evicts the oldest connection still sending its
head, so a crowd of slow clients cannot keep a quick one (whose head arrives in one packet) out.
Other paths are 404, other methods 405. Rendering runs in the event loop, between two folds: what it
reads is consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from libs.addresses import format_host_port, parse_host_port

log = logging.getLogger("bay.metrics")
#: after an error answer, what a client still sends is read and dropped for this long, up to this much
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20

MAX_HEAD = 8192
MAX_HEADER_LINES = 64
Refresh = Callable[[], Awaitable[None]]


class _HeadTooLarge(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class MetricsServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        refresh: Refresh | None = None,
        header_timeout: float = 5.0,
        write_timeout: float = 10.0,
        max_clients: int = 128,
    ) -> None:
        self.registry = registry
        self.refresh = refresh
        self.header_timeout = header_timeout
        self.write_timeout = write_timeout
        self.max_clients = max_clients
        self._server: asyncio.Server | None = None
        self._reading: OrderedDict[asyncio.Task[None], asyncio.StreamWriter] = OrderedDict()
        self._clients: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, listen: str, *, field: str = "BAY_METRICS_LISTEN") -> None:
        host, port = parse_host_port(listen, field=field, allow_zero=True)
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_HEAD)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics on http://%s/metrics", format_host_port(host, self.port))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= self.max_clients:
            if not self._reading:  # every connection is being answered: this one waits for none
                writer.close()
                return
            _, oldest = self._reading.popitem(last=False)
            oldest.transport.abort()
        self._clients.add(task)
        self._reading[task] = writer
        try:
            try:
                method, path = await asyncio.wait_for(_read_head(reader), self.header_timeout)
            except _HeadTooLarge as exc:
                self._reading.pop(task, None)
                await self._send(writer, exc.status, b"request head too large\n")
                self._reading[task] = writer  # lingering: the first to go when slots run out
                await self._linger(reader, writer)
                return
            except ValueError:
                self._reading.pop(task, None)
                await self._send(writer, 400, b"not an HTTP request\n")
                self._reading[task] = writer  # lingering: the first to go when slots run out
                await self._linger(reader, writer)
                return
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            self._reading.pop(task, None)
            if path.split("?", 1)[0] != "/metrics":
                await self._send(writer, 404, b"not found: metrics are at /metrics\n")
            elif method not in ("GET", "HEAD"):
                await self._send(writer, 405, b"GET only\n", allow=True)
            else:
                if self.refresh is not None:
                    await self.refresh()
                body = generate_latest(self.registry)
                await self._send(
                    writer, 200, body, head_only=method == "HEAD", content_type=CONTENT_TYPE_LATEST
                )
        except Exception:  # one client's trouble is its own
            log.exception("answering a metrics request failed")
        finally:
            self._reading.pop(task, None)
            self._clients.discard(task)
            writer.close()

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After an answer to a request not read to its end: say we are done writing, then read and
        drop what the client still sends (a little, briefly) before closing. Closing a socket with
        unread input makes the kernel reset the connection, and a reset can overtake the answer in
        the client's buffer: it would see "connection reset" instead of its 414."""
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
        dropped = 0

        async def drain_input() -> None:
            nonlocal dropped
            while dropped < LINGER_BYTES and (chunk := await reader.read(65536)):
                dropped += len(chunk)

        with contextlib.suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            await asyncio.wait_for(drain_input(), LINGER_SECONDS)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        *,
        head_only: bool = False,
        content_type: str = "text/plain; charset=utf-8",
        allow: bool = False,
    ) -> None:
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 414: "URI Too Long",
                  431: "Request Header Fields Too Large", 400: "Bad Request"}[status]  # fmt: skip
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            + ("Allow: GET, HEAD\r\n" if allow else "")
            + "\r\n"
        )
        writer.write(head.encode() + (b"" if head_only else body))
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(writer.drain(), self.write_timeout)


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The request line's method and target; the headers read and dropped (none matters here)."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise _HeadTooLarge(414) from exc
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request line")
    for _ in range(MAX_HEADER_LINES):
        try:
            header = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            raise _HeadTooLarge(431) from exc
        if header in (b"\r\n", b"\n"):
            return parts[0], parts[1]
    raise _HeadTooLarge(431)


async def start_metrics(
    listen: str, registry: CollectorRegistry, refresh: Refresh | None = None
) -> MetricsServer | None:
    """The listener on ``listen`` ("": none). A port already taken is said and the process goes on
    without it: metrics must not take a DNS server or a scheduler down."""
    if not listen.strip():
        return None
    server = MetricsServer(registry, refresh=refresh)
    try:
        await server.start(listen)
    except OSError as exc:
        log.error(
            "metrics cannot listen on %s (%s): none served (set BAY_METRICS_LISTEN)", listen, exc.strerror
        )
        return None
    return server
