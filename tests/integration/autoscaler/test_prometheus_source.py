"""The Prometheus scraper against real burn.py tasks and against endpoints that misbehave on real
sockets: refusing, stalling, trickling, oversized, compressed bombs, not the format, not 200."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from libs.natsserver import free_port
from services.autoscaler.sources.prometheus import PrometheusScraper, Target
from services.autoscaler.sources.promtext import Selector
from tests.poll import poll_until

BURN = Path(__file__).resolve().parents[2] / "tasks" / "burn.py"
DEADLINE = 10.0
TOTAL = Selector("http_requests_total")


def spawn_burn(cwd: Path | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-S", str(BURN), "0"], stdout=subprocess.PIPE, env={"BURN_MS": "5"}, cwd=cwd
    )


async def start_burn(procs: list[subprocess.Popen[bytes]], cwd: Path | None = None) -> int:
    """A burn.py task on a free port (it says which on its first line); its process in ``procs``."""
    proc = spawn_burn(cwd)  # a fork and exec: quick, and the test waits for nothing else meanwhile
    procs.append(proc)
    assert proc.stdout is not None
    # the task says its port first, or ends (EOF); a killed task's pipe ends the reading thread
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), DEADLINE)
    assert line.startswith(b"listening on "), line
    return int(line.split()[-1])


@pytest_asyncio.fixture
async def procs() -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.kill()
            proc.wait(timeout=10)


@pytest_asyncio.fixture
async def burners(procs: list[subprocess.Popen[bytes]]) -> list[Target]:
    return [Target(name, "127.0.0.1", await start_burn(procs)) for name in ("work.a", "work.b")]


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_burn_task_burns_cpu_per_request_and_serves_its_build(
    procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    (tmp_path / "build.txt").write_text("b-42\n")
    port = await start_burn(procs, cwd=tmp_path)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30) as http:
        assert (await http.get("/build.txt")).text == "b-42\n"
        assert (await http.get("/health")).text == "ok\n"
        assert (await http.get("/?ms=lots")).status_code == 400
        before = cpu_seconds(procs[0].pid)
        answers = await asyncio.gather(*(http.get("/?ms=100") for _ in range(6)))
        assert [a.text for a in answers] == ["burned 100 ms\n"] * 6
        burned = cpu_seconds(procs[0].pid) - before
    assert burned >= 0.5, burned  # 6 x 100 ms of CPU (the clock ticks at 10 ms: some slack)


@pytest_asyncio.fixture
async def scraper() -> AsyncIterator[PrometheusScraper]:
    async with PrometheusScraper(timeout=1.0) as s:
        yield s


async def test_scrapes_real_burn_tasks(burners: list[Target], scraper: PrometheusScraper) -> None:
    a, b = burners
    async with httpx.AsyncClient(trust_env=False) as http:
        for _ in range(3):
            resp = await http.get(f"http://127.0.0.1:{a.port}/?ms=2")
            assert resp.status_code == 200
        assert (await http.get(f"http://127.0.0.1:{a.port}/health")).text == "ok\n"  # not counted

        got = await scraper.scrape(burners, TOTAL)
        assert got.values == {"work.a": 3.0, "work.b": 0.0} and got.missing == {}
        rate = await scraper.scrape(burners, Selector("requests_per_second"))
        assert rate.values["work.a"] > 0 and rate.values["work.b"] == 0

        # a long request is in flight while it burns; the metrics still answer (threaded)
        slow = asyncio.ensure_future(http.get(f"http://127.0.0.1:{b.port}/?ms=1500", timeout=30))

        async def b_busy() -> bool:
            return (await scraper.scrape([b], Selector("inflight_requests"))).values.get("work.b") == 1.0

        await poll_until(b_busy, "work.b's request in flight", DEADLINE)
        assert (await slow).text == "burned 1500 ms\n"
        got = await scraper.scrape(burners, Selector("inflight_requests"))
        assert got.values == {"work.a": 0.0, "work.b": 0.0}

        # a metric a task does not have is missing, with the reason
        got = await scraper.scrape(burners, Selector("queue_depth"))
        assert got.values == {} and set(got.missing) == {"work.a", "work.b"}
        assert "no value for queue_depth" in got.missing["work.a"]


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest_asyncio.fixture
async def endpoint() -> AsyncIterator[Callable[[Handler], Awaitable[Target]]]:
    """Serve a handler on a real socket; the servers and their connections go at the end."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def serve(handler: Handler) -> Target:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        servers.append(server)
        return Target(f"t{len(servers)}", "127.0.0.1", server.sockets[0].getsockname()[1])

    yield serve
    for w in writers:
        w.close()
    for s in servers:
        s.close()
        await s.wait_closed()


def answer(body: bytes, status: str = "200 OK", headers: str = "") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    return handler


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()  # accepted, request read, nothing ever sent


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for i in range(1000):  # a chunk of one metric every 0.1 s: each read comes in time
        writer.write(b"%x\r\nm%d 1\n\r\n" % (len(b"m%d 1\n" % i), i))
        await writer.drain()
        await asyncio.sleep(0.1)


async def chunked_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"big_metric 1\n" * 5000
    try:
        for _ in range(1000):  # 65 MB, no Content-Length to refuse it by
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
    except ConnectionError:
        pass  # the scraper hung up, as it should


async def test_a_stalled_endpoint_does_not_hang_the_scrape(
    endpoint: Callable[[Handler], Awaitable[Target]], burners: list[Target]
) -> None:
    stalled = await endpoint(never_answer)
    trickling = await endpoint(trickle)
    async with PrometheusScraper(timeout=0.5) as scraper:
        start = time.monotonic()
        got = await scraper.scrape([stalled, trickling, *burners], TOTAL)
        elapsed = time.monotonic() - start
    assert elapsed < 3.0, elapsed
    assert "no answer within 0.5s" in got.missing[stalled.task_id]
    assert "no answer within 0.5s" in got.missing[trickling.task_id]
    assert got.values == {"work.a": 0.0, "work.b": 0.0}  # the good ones are not held up


async def test_bad_endpoints_are_missing_with_reasons(
    endpoint: Callable[[Handler], Awaitable[Target]],
) -> None:
    big = b"m 1\n" * (300_000)  # 1.2 MB, declared
    bomb = gzip.compress(b"m 1\n" + b"#" * (8 << 20) + b"\n")  # 8 MiB of comment in 8 KB of gzip
    targets = {
        "oversized": await endpoint(answer(big)),
        "flood": await endpoint(chunked_flood),
        "bomb": await endpoint(answer(bomb, headers="Content-Encoding: gzip\r\n")),
        "garbage": await endpoint(answer(b"<html>not metrics</html>\n")),
        "half": await endpoint(answer(b'http_requests_total 3\nhttp_requests_total{a="1 2\n')),
        "error": await endpoint(answer(b"http_requests_total 1\n", "500 Internal Server Error")),
        "redirect": await endpoint(answer(b"", "302 Found", "Location: http://127.0.0.1:1/\r\n")),
        "good": await endpoint(
            answer(gzip.compress(b"http_requests_total 4\n"), headers="Content-Encoding: gzip\r\n")
        ),
    }
    closed = Target("closed", "127.0.0.1", free_port())  # nothing listens there
    by_id = {t.task_id: name for name, t in targets.items()}
    async with PrometheusScraper(timeout=2.0) as scraper:
        got = await scraper.scrape([*targets.values(), closed], TOTAL)
    missing = {by_id.get(t, t): why for t, why in got.missing.items()}
    assert {by_id[t]: v for t, v in got.values.items()} == {"good": 4.0}
    assert "more than 1048576 bytes" in missing["oversized"]
    assert "more than 1048576 bytes" in missing["flood"]
    assert "more than 1048576 bytes" in missing["bomb"]
    assert "not the Prometheus text format" in missing["garbage"]
    assert "not the Prometheus text format" in missing["half"]  # nothing of a broken text is used
    assert missing["error"] == "HTTP 500"
    assert missing["redirect"] == "HTTP 302"
    assert "ConnectError" in missing["closed"]


async def test_concurrency_is_limited(endpoint: Callable[[Handler], Awaitable[Target]]) -> None:
    stalled = [await endpoint(never_answer) for _ in range(4)]
    async with PrometheusScraper(timeout=0.3, concurrency=2) as scraper:
        start = time.monotonic()
        got = await scraper.scrape(stalled, TOTAL)
        elapsed = time.monotonic() - start
    assert len(got.missing) == 4
    assert elapsed >= 0.55, elapsed  # two rounds of two: never all four at once


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        PrometheusScraper(path="metrics")
    with pytest.raises(ValueError):
        PrometheusScraper(timeout=0)
