"""A client that sends its request headers slowly is cut off at ``BAY_HEADER_TIMEOUT_SECONDS``, and
many of them at once do not keep a normal request from being answered (issue 10). Real sockets
against the gateway on a real uvicorn socket."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.gateway_harness import serve, start_stack

pytestmark = pytest.mark.timeout(90)

BOUND = 2.0
SLOW_CLIENTS = 1000  # as many as the issue saw held
PARTIAL = b"GET /v1/groups HTTP/1.1\r\nHost: gateway\r\nX-Slow: "


async def until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before it closed the connection (EOF or a reset), within a deadline."""
    got = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(within):
            while chunk := await reader.read(4096):
                got += chunk
    return got


async def test_slow_headers_are_cut_off_and_do_not_stop_normal_requests(
    fresh_stream: str, tmp_path: Path
) -> None:
    stack = await start_stack(fresh_stream, tmp_path, header_timeout_seconds=BOUND)
    served = await serve(stack.gateway)
    host, port = urlsplit(served.url).hostname, urlsplit(served.url).port
    assert host is not None and port is not None
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    dripping = None
    try:
        for _ in range(SLOW_CLIENTS):  # headers begun, never finished
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(PARTIAL)
            await writer.drain()
            conns.append((reader, writer))
        drip_reader, drip_writer = await asyncio.open_connection(host, port)
        drip_writer.write(PARTIAL)

        async def drip() -> None:  # a slowloris client: one byte of a header value at a time, for ever
            while True:
                await asyncio.sleep(BOUND / 5)  # the client's pace, not a wait for the server
                drip_writer.write(b"x")
                await drip_writer.drain()

        dripping = asyncio.create_task(drip())

        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            resp = await http.get("/v1/groups", headers=stack.viewer)  # served with all of them open
            assert resp.status_code == 200, resp.text

        for reader, _ in conns:
            assert await until_closed(reader, BOUND + 10) == b""  # closed, nothing answered
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await until_closed(drip_reader, BOUND + 10)  # TimeoutError here: data kept it open
    finally:
        if dripping is not None:
            dripping.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await dripping
        for _, writer in conns:
            writer.close()
        await served.stop()
        await stack.stop()


async def test_a_keep_alive_connection_gets_the_same_deadline_for_its_next_request(
    fresh_stream: str, tmp_path: Path
) -> None:
    stack = await start_stack(fresh_stream, tmp_path, header_timeout_seconds=BOUND, anonymous_read=True)
    served = await serve(stack.gateway)
    host, port = urlsplit(served.url).hostname, urlsplit(served.url).port
    assert host is not None and port is not None
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 10)
        assert status.startswith(b"HTTP/1.1 200")
        writer.write(PARTIAL)  # the next request on the same connection, never finished
        rest = await until_closed(reader, BOUND + 10)
        assert rest.count(b"HTTP/1.1") == 0  # the first response's remainder only, then closed
    finally:
        writer.close()
        await served.stop()
        await stack.stop()
