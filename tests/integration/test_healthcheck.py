"""The scheduler's own health checks against real servers, sockets and processes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from services.scheduler.adapters.healthcheck import CheckTarget, HealthChecker
from services.scheduler.ports import HealthCheckSpec
from tests.poll import poll_until

DEADLINE = 10.0
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Result:
    task_id: str
    ok: bool
    message: str
    at: float  # loop time


class Results:
    """The sink: every result, plus a queue per task to wait on."""

    def __init__(self) -> None:
        self.all: list[Result] = []
        self._queues: dict[str, asyncio.Queue[Result]] = {}

    def queue(self, task_id: str) -> asyncio.Queue[Result]:
        return self._queues.setdefault(task_id, asyncio.Queue())

    async def sink(self, task_id: str, ok: bool, message: str) -> None:
        result = Result(task_id, ok, message, asyncio.get_running_loop().time())
        self.all.append(result)
        await self.queue(task_id).put(result)

    async def next(self, task_id: str, deadline: float = DEADLINE) -> Result:
        return await asyncio.wait_for(self.queue(task_id).get(), deadline)

    async def until(self, task_id: str, pred: Callable[[Result], bool]) -> Result:
        async def scan() -> Result:
            while not pred(result := await self.queue(task_id).get()):
                pass
            return result

        return await asyncio.wait_for(scan(), DEADLINE)


class HttpServer:
    """Answers every request with ``status``; ``hang`` makes it accept and never answer."""

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.requests: list[bytes] = []
        self.open = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> HttpServer:
        self._server = await asyncio.start_server(self._handle, HOST, 0, backlog=1024)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            if self.hang:  # read the request and whatever follows, until the client closes
                while await reader.read(4096):
                    pass
                return
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(f"HTTP/1.1 {self.status} Whatever\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.open -= 1

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def spec(protocol: str, **kw: Any) -> HealthCheckSpec:
    kw.setdefault("interval_seconds", 30.0)
    kw.setdefault("timeout_seconds", 2.0)
    return HealthCheckSpec(protocol=protocol, **kw)


def target(
    task_id: str,
    check: HealthCheckSpec,
    ports: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> CheckTarget:
    return CheckTarget(task_id, check, HOST, ports or {}, env or {"PATH": os.environ["PATH"]}, cwd)


async def eventually(cond: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    await poll_until(cond, what, deadline)


def gone(pid: int) -> bool:
    """Ended (a zombie waiting for some other parent to reap it counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest_asyncio.fixture
async def results() -> Results:
    return Results()


@pytest_asyncio.fixture
async def checker(results: Results) -> AsyncIterator[HealthChecker]:
    hc = HealthChecker(results.sink, seed=1)
    try:
        yield hc
    finally:
        await hc.close()


@contextlib.asynccontextmanager
async def http_server(status: int = 200, hang: bool = False) -> AsyncIterator[HttpServer]:
    server = await HttpServer(status, hang).start()
    try:
        yield server
    finally:
        await server.stop()


# --- http ---


async def test_http_ok_then_failing_with_status(checker: HealthChecker, results: Results) -> None:
    async with http_server(200) as server:
        checker.watch(target("t1", spec("http", path="/health", interval_seconds=0.05), {"": server.port}))
        first = await results.next("t1")
        assert first.ok, first
        assert first.message == f"HTTP 200 from http://{HOST}:{server.port}/health"
        assert server.requests[0].startswith(b"GET /health HTTP/1.1\r\n")
        assert b"Connection: close" in server.requests[0]
        server.status = 503
        failed = await results.until("t1", lambda r: not r.ok)
        assert failed.message == f"HTTP 503 from http://{HOST}:{server.port}/health"
        server.status = 200
        assert (await results.until("t1", lambda r: r.ok)).ok


async def test_http_redirect_is_healthy_and_path_gets_a_slash(
    checker: HealthChecker, results: Results
) -> None:
    async with http_server(302) as server:
        checker.watch(target("t1", spec("http", path="ping"), {"": server.port}))
        result = await results.next("t1")
        assert result.ok and result.message == f"HTTP 302 from http://{HOST}:{server.port}/ping"
        assert server.requests[0].startswith(b"GET /ping HTTP/1.1\r\n")


async def test_http_connection_refused(checker: HealthChecker, results: Results) -> None:
    port = closed_port()
    checker.watch(target("t1", spec("http"), {"web": port}))
    result = await results.next("t1")
    assert not result.ok
    assert result.message == f"connection refused {HOST}:{port}"


async def test_http_server_that_never_answers_times_out(checker: HealthChecker, results: Results) -> None:
    async with http_server(hang=True) as server:
        started = asyncio.get_running_loop().time()
        checker.watch(target("t1", spec("http", path="/h", timeout_seconds=0.3), {"": server.port}))
        result = await results.next("t1")
        assert not result.ok
        assert result.message == f"timed out after 0.3s: http://{HOST}:{server.port}/h"
        assert 0.3 <= result.at - started < 0.3 + 1.0
        await checker.close()
        await eventually(lambda: server.open == 0, "the server saw the probe's connection close")


async def test_http_port_by_name(checker: HealthChecker, results: Results) -> None:
    async with http_server(200) as server:
        ports = {"web": closed_port(), "admin": server.port}
        checker.watch(target("admin", spec("http", port_name="admin"), ports))
        checker.watch(target("first", spec("http"), ports))
        checker.watch(target("missing", spec("http", port_name="metrics"), ports))
        checker.watch(target("none", spec("tcp"), {}))
        assert (await results.next("admin")).message.startswith(f"HTTP 200 from http://{HOST}:{server.port}")
        assert (await results.next("first")).message == f"connection refused {HOST}:{ports['web']}"
        missing = await results.next("missing")
        assert not missing.ok and missing.message == "port 'metrics' not found in the task's ports"
        none = await results.next("none")
        assert not none.ok and none.message == "the task has no ports to check"


# --- tcp ---


async def test_tcp_ok_and_refused(checker: HealthChecker, results: Results) -> None:
    async with http_server(200) as server:
        refused = closed_port()
        checker.watch(target("up", spec("tcp"), {"": server.port}))
        checker.watch(target("down", spec("tcp"), {"": refused}))
        up, down = await results.next("up"), await results.next("down")
        assert up.ok and up.message == f"TCP connect to {HOST}:{server.port} succeeded"
        assert not down.ok and down.message == f"connection refused {HOST}:{refused}"


# --- command ---


async def test_command_exit_codes_env_and_cwd(
    checker: HealthChecker, results: Results, tmp_path: Path
) -> None:
    (tmp_path / "marker").write_text("")
    env = {"PATH": os.environ["PATH"], "PORT0": "31002", "HOST": HOST}
    checker.watch(target("zero", spec("command", command="true")))
    checker.watch(target("one", spec("command", command="echo first >&2; echo 'db down' >&2; exit 1")))
    checker.watch(target("silent", spec("command", command="exit 3")))
    checker.watch(
        target(
            "env",
            spec("command", command='test "$PORT0:$HOST" = "31002:127.0.0.1" && test -f marker'),
            env=env,
            cwd=str(tmp_path),
        )
    )
    zero, one, silent, with_env = [await results.next(t) for t in ("zero", "one", "silent", "env")]
    assert zero.ok and zero.message == "exit 0"
    assert not one.ok and one.message == "exit 1: db down"
    assert not silent.ok and silent.message == "exit 3"
    assert with_env.ok, with_env


async def test_hanging_command_is_killed_at_the_timeout(
    checker: HealthChecker, results: Results, tmp_path: Path
) -> None:
    # The shell and a child of it: the whole process group must go, not just the shell.
    command = f"sleep 30 & echo $! > {tmp_path}/child; echo $$ > {tmp_path}/shell; wait"
    started = asyncio.get_running_loop().time()
    checker.watch(target("hang", spec("command", command=command, timeout_seconds=0.5)))
    result = await results.next("hang")
    assert not result.ok
    assert result.message == f"timed out after 0.5s: command {command!r}"
    assert 0.5 <= result.at - started < 0.5 + 1.0
    for name in ("shell", "child"):
        pid = int((tmp_path / name).read_text())
        await eventually(functools.partial(gone, pid), f"{name} process {pid} ended")


async def test_unwatch_kills_a_running_command(
    checker: HealthChecker, results: Results, tmp_path: Path
) -> None:
    command = f"echo $$ > {tmp_path}/pid.tmp; mv {tmp_path}/pid.tmp {tmp_path}/pid; exec sleep 30"
    checker.watch(target("slow", spec("command", command=command, timeout_seconds=20)))
    pid_file = tmp_path / "pid"
    await eventually(pid_file.exists, "the check command started")
    pid = int(pid_file.read_text())
    checker.unwatch("slow")
    assert checker.watching() == set()
    await checker.close()
    assert gone(pid)
    assert results.all == []


async def test_commands_are_bounded_by_the_semaphore(results: Results, tmp_path: Path) -> None:
    log = tmp_path / "log"
    hc = HealthChecker(results.sink, max_concurrent_commands=2)
    try:
        command = f"echo s >> {log}; sleep 0.2; echo e >> {log}"
        for i in range(6):
            hc.watch(target(f"c{i}", spec("command", command=command)))
        done = [await results.next(f"c{i}") for i in range(6)]
        assert all(r.ok for r in done), done
    finally:
        await hc.close()
    running, most = 0, 0
    for line in log.read_text().split():
        running += 1 if line == "s" else -1
        most = max(most, running)
    assert most == 2


# --- timing and lifecycle ---


async def test_first_result_right_away_then_every_interval(results: Results) -> None:
    async with http_server(200) as server:
        hc = HealthChecker(results.sink, jitter=0.0)
        try:
            started = asyncio.get_running_loop().time()
            hc.watch(target("t1", spec("http", interval_seconds=0.5), {"": server.port}))
            got = [await results.next("t1") for _ in range(3)]
        finally:
            await hc.close()
    assert got[0].at - started < 0.3  # not after an interval
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert all(0.45 <= gap < 0.5 + 0.5 for gap in gaps), gaps


async def test_until_the_first_pass_checks_run_at_the_start_interval(results: Results) -> None:
    async with http_server(200) as server:
        hc = HealthChecker(results.sink, jitter=0.0, start_interval=0.1)
        try:
            check = spec("http", interval_seconds=1.0, grace_period_seconds=30)
            hc.watch(target("starting", check, {"": closed_port()}))  # not answering yet
            hc.watch(target("up", check, {"": server.port}))
            # past its grace period, a failing task is checked at its interval (failures count there)
            hc.watch(
                target(
                    "past-grace",
                    spec("http", interval_seconds=1.0, grace_period_seconds=0),
                    {"": closed_port()},
                )
            )
            starting = [await results.next("starting") for _ in range(4)]
            up = [await results.next("up") for _ in range(2)]
            late = [await results.next("past-grace") for _ in range(2)]
            # a command check (a process each time) keeps its interval from the start
            hc.watch(
                target(
                    "cmd", spec("command", command="exit 1", interval_seconds=1.0, grace_period_seconds=30)
                )
            )
            cmd = [await results.next("cmd") for _ in range(2)]
        finally:
            await hc.close()
    assert not any(r.ok for r in starting + late)
    gaps = [b.at - a.at for a, b in itertools.pairwise(starting)]
    assert all(0.09 <= gap < 0.5 for gap in gaps), gaps  # every start interval, not every second
    assert all(r.ok for r in up) and up[1].at - up[0].at >= 0.95  # passed: every interval
    assert late[1].at - late[0].at >= 0.95 and cmd[1].at - cmd[0].at >= 0.95


async def test_unwatch_stops_results(checker: HealthChecker, results: Results) -> None:
    async with http_server(200) as server:
        checker.watch(target("gone", spec("http", interval_seconds=0.05), {"": server.port}))
        await results.next("gone")
        checker.unwatch("gone")
        seen = len([r for r in results.all if r.task_id == "gone"])
        # A task still watched, on the same interval: several of its results prove time went by.
        checker.watch(target("kept", spec("http", interval_seconds=0.05), {"": server.port}))
        for _ in range(5):
            await results.next("kept")
        assert len([r for r in results.all if r.task_id == "gone"]) == seen
        assert checker.watching() == {"kept"}


async def test_watch_is_idempotent_and_a_new_target_replaces(
    checker: HealthChecker, results: Results
) -> None:
    async with http_server(200) as server:
        good = target("t1", spec("http", interval_seconds=0.05), {"": server.port})
        checker.watch(good)
        checker.watch(good)
        assert checker.watching() == {"t1"}
        assert (await results.next("t1")).ok
        refused = closed_port()
        checker.watch(target("t1", spec("tcp", interval_seconds=0.05), {"": refused}))
        assert checker.watching() == {"t1"}
        await results.until("t1", lambda r: r.message == f"connection refused {HOST}:{refused}")
        # The old loop is gone: from here on only the new target reports.
        for _ in range(5):
            assert (await results.next("t1")).message == f"connection refused {HOST}:{refused}"


async def test_a_failing_sink_does_not_stop_the_checks(results: Results) -> None:
    calls = 0

    async def sink(task_id: str, ok: bool, message: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("sink broke")
        await results.sink(task_id, ok, message)

    async with http_server(200) as server:
        hc = HealthChecker(sink)
        try:
            hc.watch(target("t1", spec("http", interval_seconds=0.05), {"": server.port}))
            assert (await results.next("t1")).ok
            assert (await results.next("t1")).ok
        finally:
            await hc.close()
    assert calls >= 3


async def test_200_targets_all_report_fast_and_leave_no_sockets(results: Results) -> None:
    def sockets() -> int:
        return sum(1 for fd in os.listdir("/proc/self/fd") if _is_socket(fd))

    async with http_server(200) as server:
        baseline = sockets()
        hc = HealthChecker(results.sink)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(100):
            hc.watch(target(f"h{i}", spec("http", interval_seconds=60), {"": server.port}))
            hc.watch(target(f"t{i}", spec("tcp", interval_seconds=60), {"": server.port}))
        firsts = await asyncio.gather(*(results.next(f"{k}{i}", 3.0) for k in "ht" for i in range(100)))
        elapsed = loop.time() - started
        print(f"200 first results in {elapsed:.3f}s")
        await hc.close()
        assert all(r.ok for r in firsts)
        assert elapsed < 3.0, elapsed
        assert len(server.requests) == 100
        await eventually(lambda: server.open == 0 and sockets() <= baseline, "every probe socket closed")


def _is_socket(fd: str) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    except OSError:
        return False


async def test_close_cancels_everything_and_kills_commands(results: Results, tmp_path: Path) -> None:
    hc = HealthChecker(results.sink)
    for i in range(3):
        command = f"echo $$ > {tmp_path}/{i}.tmp; mv {tmp_path}/{i}.tmp {tmp_path}/{i}.pid; exec sleep 30"
        hc.watch(target(f"c{i}", spec("command", command=command, timeout_seconds=20)))
    pid_files = [tmp_path / f"{i}.pid" for i in range(3)]
    await eventually(lambda: all(p.exists() for p in pid_files), "the check commands started")
    await hc.close()
    assert hc.watching() == set()
    assert all(gone(int(p.read_text())) for p in pid_files)
    assert results.all == []
