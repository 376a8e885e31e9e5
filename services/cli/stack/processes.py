"""The things the supervisor keeps running: a service process, and the embedded nats-server.

Both offer ``start() -> pid``, ``wait() -> returncode`` and ``stop(timeout)``. A service runs in its
own process group (so a signal meant for the supervisor's terminal does not reach it first, and
stopping it also stops anything it spawned) and, on Linux, dies with the supervisor
(``PR_SET_PDEATHSIG``) even if the supervisor is killed without a chance to clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from libs.natsserver import start_nats
from services.cli.stack.output import Output

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
LINE_LIMIT = 1 << 20


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Managed(Protocol):
    name: str
    started_at: float

    @property
    def pid(self) -> int | None: ...

    async def start(self) -> int: ...

    async def wait(self) -> int: ...

    async def stop(self, timeout: float) -> None: ...


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ServiceChild:
    """``python -m <module>`` with its output copied, line by line and named, to the supervisor's."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        out: Output,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.out = out
        self.redact = redact  # what of a line must not be shown (a program that logs a secret)
        self.started_at = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> int:
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            limit=LINE_LIMIT,
        )
        self.started_at = time.monotonic()
        assert self._proc.stdout is not None
        self._pump = asyncio.create_task(self._copy_output(self._proc.stdout))
        return self._proc.pid

    async def _copy_output(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than LINE_LIMIT: show it in pieces
                raw = await stream.read(LINE_LIMIT)
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            self.out.child(self.name, self.redact(line) if self.redact else line)

    async def _drain_output(self) -> None:
        # the output ends when every holder of the pipe is gone; a straggler must not block us
        if self._pump is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._pump), 1.0)

    async def wait(self) -> int:
        assert self._proc is not None, "not started"
        code = await self._proc.wait()
        await self._drain_output()
        return code

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def signal_and_wait(self, sig: signal.Signals, timeout: float) -> bool:
        """Send ``sig`` to the service alone; True if it then exited within ``timeout``."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return True
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            _killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                self.out.say(f"{self.name} did not stop within {timeout:.0f}s; killing it")
                _killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        _killpg(proc.pid, signal.SIGKILL)  # whatever it left behind in its group
        await self._drain_output()
        if self._pump is not None:
            self._pump.cancel()


class NatsChild:
    """The embedded nats-server (JetStream in ``store``), started by :func:`libs.natsserver.start_nats`.

    Its pid is kept in ``store/bay-nats.pid``: nats-server does not die with a supervisor that was
    killed outright, so the next ``bay up`` on the same data stops the one left behind.
    """

    name = "nats"

    def __init__(self, store: Path, port: int, config_file: Path | None = None) -> None:
        self.store = store
        self.port = port
        self.config_file = config_file
        self.started_at = 0.0
        self.pidfile = store / "bay-nats.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop_leftover(self, timeout: float = 5.0) -> int | None:
        """Stop a nats-server an earlier, killed supervisor left on this store; its pid, if any.

        Only a process whose command line is nats-server on exactly this store is touched (the
        caller holds the data dir's lock, so no live supervisor owns it).
        """
        try:
            pid = int(self.pidfile.read_text().strip())
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            self.pidfile.unlink(missing_ok=True)
            return None
        if not argv or not argv[0].endswith(b"nats-server") or str(self.store).encode() not in argv:
            self.pidfile.unlink(missing_ok=True)
            return None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + timeout
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not Path(f"/proc/{pid}").exists():
                break
        self.pidfile.unlink(missing_ok=True)
        return pid

    async def start(self) -> int:
        self._proc = await asyncio.to_thread(
            start_nats, self.store, self.port, log_file=self.store / "nats.log", config_file=self.config_file
        )
        self.started_at = time.monotonic()
        self.pidfile.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    async def wait(self) -> int:
        assert self._proc is not None, "not started"
        return await asyncio.to_thread(self._proc.wait)

    async def stop(self, timeout: float) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        self.pidfile.unlink(missing_ok=True)
