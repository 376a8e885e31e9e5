"""The DNS process's /metrics: answers counted by rcode on every path (the C fast path's batches, the
Python paths, the slow path's refusals and FORMERR), and its metrics listener holding out against
clients that misbehave: a crowd dripping their headers, garbage, a huge request line, a client that
never reads, while a well-behaved scrape is answered within a deadline."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from libs.natsserver import free_port
from tests.integration.dns_harness import DnsProcess, EventWriter
from tests.integration.metrics_scrape import scrape
from tests.poll import poll_until

SCRAPE_DEADLINE = 2.0


@pytest_asyncio.fixture
async def dns_proc(fresh_stream: str, tmp_path: Path) -> AsyncIterator[DnsProcess]:
    proc = DnsProcess(fresh_stream, tmp_path / "dns", env={"BAY_METRICS_LISTEN": f"127.0.0.1:{free_port()}"})
    await proc.start()
    yield proc
    proc.stop()


def metrics_address(proc: DnsProcess) -> str:
    return proc.env["BAY_METRICS_LISTEN"]


async def test_answers_are_counted_by_rcode(dns_proc: DnsProcess, fresh_stream: str) -> None:
    writer = await EventWriter.open(fresh_stream)
    try:
        await writer.cluster("local")
        await writer.group("web")
        await writer.launch("web", "10.0.0.7", {"http": 31000})
    finally:
        await writer.close()
    await poll_until(lambda: dns_proc.addresses("web.local.bay.internal."), "web answered", 15.0)
    page = await scrape(metrics_address(dns_proc))
    assert page.types["bay_dns_queries"] == "counter"
    base = {
        rc: page.value("bay_dns_queries_total", rcode=rc) or 0
        for rc in ("noerror", "nxdomain", "refused", "formerr")
    }

    for _ in range(40):  # the first from Python (then cached), the rest from the fast path
        reply = await dns_proc.query("missing.local.bay.internal.")
        assert reply.rcode() == 3
    for _ in range(10):
        await dns_proc.query("web.local.bay.internal.", tcp=True)  # TCP: the Python fast path
    await dns_proc.query("example.com.")  # outside the zone, no upstreams: REFUSED
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(b"\x12\x34\x01\x00" + b"\x00" * 8 + b"\xff\xff\xff", ("127.0.0.1", dns_proc.port))
    sock.settimeout(2.0)
    assert sock.recv(512)[3] & 0x0F == 1  # FORMERR
    sock.close()

    page = await scrape(metrics_address(dns_proc))
    got = {rc: (page.value("bay_dns_queries_total", rcode=rc) or 0) - base[rc] for rc in base}
    assert got == {"noerror": 10, "nxdomain": 40, "refused": 1, "formerr": 1}
    assert page.value("bay_dns_queries_total", rcode="servfail") == 0
    assert page.value("bay_nats_connected", service="dns") == 1


async def test_misbehaving_clients_do_not_stop_a_scrape(dns_proc: DnsProcess) -> None:
    host, port_text = metrics_address(dns_proc).rsplit(":", 1)
    port = int(port_text)

    async def raw(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(data)
        await writer.drain()
        out = await asyncio.wait_for(reader.read(), 10.0)
        writer.close()
        return out

    assert (await raw(b"\x16\x03\x01garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
    assert (await raw(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 414")
    huge_header = b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 20_000 + b"\r\n\r\n"
    assert (await raw(huge_header)).startswith(b"HTTP/1.1 431")
    assert (await raw(b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(b"HTTP/1.1 404")
    assert (await raw(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(b"HTTP/1.1 405")

    # a crowd dripping their heads, more than the listener holds, and clients that never read
    slow: list[asyncio.StreamWriter] = []
    for _ in range(300):
        _, w = await asyncio.open_connection(host, port)
        w.write(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        slow.append(w)
    deaf = []
    for _ in range(20):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n" * 50)
        deaf.append(s)
    try:
        for _ in range(3):
            started = time.monotonic()
            page = await asyncio.wait_for(scrape(metrics_address(dns_proc)), SCRAPE_DEADLINE)
            assert time.monotonic() - started < SCRAPE_DEADLINE
            assert page.value("bay_dns_queries_total", rcode="noerror") is not None
            for w in slow[:50]:
                w.write(b"a")  # still dripping
        # a head that has not arrived whole within the header deadline (5 s) is cut off
        reader, w = await asyncio.open_connection(host, port)
        w.write(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 10.0) == b""
        assert 4.0 < time.monotonic() - started < 8.0
        w.close()
        assert dns_proc.proc is not None and dns_proc.proc.poll() is None
    finally:
        for w in slow:
            w.close()
        for s in deaf:
            s.close()
