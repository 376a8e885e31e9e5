"""Health checks the scheduler runs itself, for tasks on the local backend (Mesos runs its own).

The runner only produces raw results, ``(task_id, ok, message)``, one per check, grace period or not:
turning results into health is the pure state machine's job (``domain/health.observe``). Each watched
task has one loop: the first check runs at once (a task that just went RUNNING should become healthy
fast), then one every ``interval_seconds`` from start to start, with a little random jitter so that
thousands of tasks launched together drift apart instead of probing in lockstep. Every check is
bounded by ``timeout_seconds``.

Protocols, as in Marathon: ``http`` (GET; 2xx and 3xx are healthy; a tiny HTTP/1.1 client that reads
the status line only, so a check costs one short connection and no dependency), ``tcp`` (the connect
succeeds) and ``command`` (``/bin/sh -c`` in the task's env and sandbox, as the task's uid and
group; exit 0 is healthy). A command runs in its own process group, which is killed when the check
times out, is unwatched, or ends (a check's background processes do not outlive it). Its stderr goes
to an unlinked temporary file rather than a pipe: the check ends when the command exits, even if
something it started still holds stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from services.scheduler.ports import HealthCheckSpec

log = logging.getLogger("bay.scheduler.health")

ResultSink = Callable[[str, bool, str], Awaitable[None]]  # (task_id, ok, message)

STATUS_LINE_LIMIT = 8192  # bytes; a longer status line is not HTTP
STDERR_TAIL = 4096  # bytes of a command's stderr kept for the message


@dataclass(frozen=True)
class CheckTarget:
    task_id: str
    check: HealthCheckSpec
    host: str  # address to probe, e.g. "127.0.0.1"
    ports: Mapping[str, int]  # port name -> host port; the check's port_name picks one ("" = the first)
    env: Mapping[str, str]  # for command checks (PORT0.., HOST, ...)
    cwd: str | None = None  # command checks run in the task's sandbox when given
    run_as: tuple[str, ...] = ()  # ... and as the task's user: this prefix (setpriv ...) runs it so


class _Failed(Exception):
    """A check's failure, with the message the result carries."""


async def check_once(target: CheckTarget, commands: asyncio.Semaphore | None = None) -> tuple[bool, str]:
    """Run one check of ``target``: ``(ok, message)``. Never raises (except when cancelled).

    A command check waits for a slot of ``commands`` first; its timeout starts once it has one, so a
    queue of checks does not count against the task.
    """
    check = target.check
    try:
        if check.protocol == "command":
            if commands is not None:
                await commands.acquire()
            try:
                async with asyncio.timeout(check.timeout_seconds):
                    return await _command(target)
            finally:
                if commands is not None:
                    commands.release()
        host, port = target.host, _port(target)
        async with asyncio.timeout(check.timeout_seconds):
            if check.protocol == "http":
                return await _http(host, port, check.path)
            if check.protocol == "tcp":
                return await _tcp(host, port)
        return False, f"unknown health check protocol {check.protocol!r}"
    except _Failed as exc:
        return False, str(exc)
    except TimeoutError:
        return False, f"timed out after {float(check.timeout_seconds)}s: {_what(target)}"
    except Exception as exc:  # a bug in a probe must read as a failed check, not end the loop
        log.exception("health check of %s failed unexpectedly", target.task_id)
        return False, f"check error: {exc!r}"


def _port(target: CheckTarget) -> int:
    name = target.check.port_name
    if not name:
        if not target.ports:
            raise _Failed("the task has no ports to check")
        return next(iter(target.ports.values()))
    if name not in target.ports:
        raise _Failed(f"port {name!r} not found in the task's ports")
    return target.ports[name]


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _path(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _url(host: str, port: int, path: str) -> str:
    return f"http://{_hostport(host, port)}{_path(path)}"


def _what(target: CheckTarget) -> str:
    check = target.check
    if check.protocol == "command":
        return f"command {check.command!r}"
    try:
        port = _port(target)
    except _Failed:
        return check.protocol
    if check.protocol == "http":
        return _url(target.host, port, check.path)
    return _hostport(target.host, port)


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_connection(host, port, limit=STATUS_LINE_LIMIT)
    except ConnectionRefusedError:
        raise _Failed(f"connection refused {_hostport(host, port)}") from None
    except OSError as exc:
        raise _Failed(f"cannot connect to {_hostport(host, port)}: {exc.strerror or exc}") from None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _tcp(host: str, port: int) -> tuple[bool, str]:
    _, writer = await _connect(host, port)
    await _close(writer)
    return True, f"TCP connect to {_hostport(host, port)} succeeded"


async def _http(host: str, port: int, path: str) -> tuple[bool, str]:
    url = _url(host, port, path)
    reader, writer = await _connect(host, port)
    try:
        request = (
            f"GET {_path(path)} HTTP/1.1\r\n"
            f"Host: {_hostport(host, port)}\r\nUser-Agent: bay-healthcheck\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(request.encode("latin-1"))
        try:
            await writer.drain()
            line = await reader.readline()
        except ValueError:  # longer than the limit
            raise _Failed(f"status line too long from {url}") from None
        except OSError as exc:
            raise _Failed(f"connection error from {url}: {exc.strerror or exc}") from None
    finally:
        await _close(writer)
    parts = line.decode("latin-1").split(None, 2)
    if not parts:
        raise _Failed(f"no HTTP response from {url}")
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _Failed(f"not an HTTP status line from {url}: {line[:80]!r}")
    status = int(parts[1])
    return 200 <= status < 400, f"HTTP {status} from {url}"


async def _command(target: CheckTarget) -> tuple[bool, str]:
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = await asyncio.create_subprocess_exec(
                *target.run_as,
                "/bin/sh",
                "-c",
                target.check.command,
                env=dict(target.env),
                cwd=target.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        except OSError as exc:
            raise _Failed(f"cannot run command: {exc.strerror or exc}") from None
        try:
            code = await proc.wait()
        finally:
            # Timed out or unwatched: kill the group; exited: kill what it left behind. Then reap.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                await proc.wait()
        if code == 0:
            return True, "exit 0"
        status = f"exit {code}" if code > 0 else f"killed by signal {-code}"
        size = stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, size - STDERR_TAIL))
        lines = [ln.strip() for ln in stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return False, f"{status}: {lines[-1]}" if lines else status


class HealthChecker:
    """Runs the checks of the watched tasks and hands every result to ``sink``.

    A sink that raises is logged and the task's checks go on. ``seed`` makes the jitter repeatable.
    Until a task's HTTP or TCP check first passes, within its grace period, it runs every
    ``start_interval`` (at most its own interval), as Docker's ``--start-interval``: a task that has
    just started is seen ready soon after it is. Those failures cost a refused connection each and
    count for nothing (the grace period); past it, failures come at the check's own interval, as
    many as before. A command check (a process as the task, each time) keeps its interval.
    """

    def __init__(
        self,
        sink: ResultSink,
        *,
        max_concurrent_commands: int = 16,
        jitter: float = 0.1,
        seed: int | None = None,
        start_interval: float = 0.25,
    ) -> None:
        self._sink = sink
        self._start_interval = start_interval
        self._commands = asyncio.Semaphore(max_concurrent_commands)
        self._jitter = jitter
        self._random = random.Random(seed)
        self._loops: dict[str, tuple[CheckTarget, asyncio.Task[None]]] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def watch(self, target: CheckTarget) -> None:
        """Start checking ``target`` now; the same target again changes nothing, a new one replaces it."""
        current = self._loops.get(target.task_id)
        if current is not None:
            if current[0] == target and not current[1].done():
                return
            self._cancel(current[1])
        task = asyncio.get_running_loop().create_task(self._run(target), name=f"health:{target.task_id}")
        self._loops[target.task_id] = (target, task)

    def unwatch(self, task_id: str) -> None:
        current = self._loops.pop(task_id, None)
        if current is not None:
            self._cancel(current[1])

    def watching(self) -> set[str]:
        return set(self._loops)

    async def close(self) -> None:
        """Cancel every loop (killing running check commands) and wait until they are gone."""
        for task_id in list(self._loops):
            self.unwatch(task_id)
        while self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)

    def _cancel(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _run(self, target: CheckTarget) -> None:
        """Check, report, wait; until cancelled. A cancel swallowed on the way (a sink's
        ``asyncio.wait_for`` on Python 3.11 can do that) still ends the loop after its next wait."""
        loop = asyncio.get_running_loop()
        interval = target.check.interval_seconds
        passed = False  # once: from then on, every interval
        start = loop.time()
        fast_start = target.check.protocol in ("http", "tcp")
        starting_until = start + target.check.grace_period_seconds
        while True:
            ok, message = await check_once(target, self._commands)
            passed = passed or ok
            try:
                await self._sink(target.task_id, ok, message)
            except Exception:
                log.exception("health result sink failed for %s", target.task_id)
            starting = fast_start and not passed and loop.time() < starting_until
            step = min(interval, self._start_interval) if starting else interval
            start += step * (1.0 + self._random.uniform(-self._jitter, self._jitter))
            now = loop.time()
            if start < now:  # a slow check or sink: start again now, do not try to catch up
                start = now
            await asyncio.sleep(start - now)
            if self._loops.get(target.task_id, (None, None))[1] is not asyncio.current_task():
                return  # unwatched or replaced, and the cancel got lost (see the docstring)
