"""``bay up`` as a real subprocess in a temporary directory, and the real ``bay`` CLI against it.

Every port is a free one (never the defaults), so the suite does not collide with a platform
already running on this machine. Waiting is always for a line, a process exit or an answer, with a
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from libs.addresses import parse_host_port
from libs.natsserver import free_port

BIN = Path(sys.executable).parent
BAY = str(BIN / "bay")
READY = (
    r"^bay: ready — gateway (http://\S+), registry (\S+), nats (\S+), data (.+); schedulers (.+?)"
    r"(?:; dns (\S+))?$"
)


def clean_environment() -> dict[str, str]:
    """This process's environment without any BAY_* setting a developer may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}


#: the processes ``bay up`` gives a metrics listener, as its settings name them
METRICS_PROCESSES = ("REGISTRY", "SCHEDULER", "SIM_SCHEDULER", "DEPLOYER", "AUTOSCALER", "DNS")


@dataclass
class BayUp:
    """A running ``bay up``: its output lines, its children's pids, and a way to drive it."""

    cwd: Path
    env: dict[str, str]
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    @property
    def data_dir(self) -> Path:
        return self.cwd / ".bay"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.env['BAY_GATEWAY_LISTEN']}"

    @property
    def dns_port(self) -> int:
        return parse_host_port(self.env["BAY_DNS_LISTEN"], field="BAY_DNS_LISTEN")[1]

    def metrics_address(self, process: str) -> str:
        """Where a process's /metrics is (``process`` as in :data:`METRICS_PROCESSES`)."""
        return self.env[f"BAY_{process}_METRICS_LISTEN"]

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self.changed.set()
        self.changed.set()

    async def wait_for(self, pattern: str, timeout: float = 20.0, start: int = 0) -> re.Match[str]:
        """The first line from ``start`` on matching ``pattern``; fails with the output if none comes."""

        async def scan() -> re.Match[str]:
            seen = start
            while True:
                for line in self.lines[seen:]:
                    if m := re.search(pattern, line):
                        return m
                seen = max(seen, len(self.lines))
                if self.proc.returncode is not None and self.reader is not None and self.reader.done():
                    raise AssertionError(f"bay up exited ({self.proc.returncode}) before {pattern!r}")
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except (TimeoutError, AssertionError) as exc:
            tail = "\n".join(self.lines[-60:])
            raise AssertionError(
                f"{exc or 'timeout'}: no line matching {pattern!r}; output:\n{tail}"
            ) from None

    def pids(self) -> dict[str, int]:
        """Each process's latest pid, as the supervisor reported it."""
        out: dict[str, int] = {}
        for line in self.lines:
            if m := re.match(r"^bay: (\S+) (?:started|restarted) \(pid (\d+)\)$", line):
                out[m.group(1)] = int(m.group(2))
        return out

    def all_pids(self) -> set[int]:
        return {int(m.group(1)) for line in self.lines if (m := re.search(r"\(pid (\d+)\)$", line))}

    def cli_env(self, **extra: str) -> dict[str, str]:
        return {
            **clean_environment(),
            "BAY_GATEWAY_URL": self.gateway_url,
            "BAY_DATA_DIR": str(self.data_dir),
            "COLUMNS": "200",
            **extra,
        }

    async def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 20.0, **env: str
    ) -> tuple[int, str, str]:
        """Run the real ``bay`` CLI: (exit code, stdout, stderr)."""
        proc = await asyncio.create_subprocess_exec(
            BAY,
            *args,
            cwd=self.cwd,
            env=self.cli_env(**env),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"bay {' '.join(args)} did not finish within {timeout}s") from None
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.gateway_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10.0
        )

    async def terminate(self, timeout: float = 15.0, sig: signal.Signals = signal.SIGTERM) -> int:
        """``sig`` (SIGTERM), then the exit code (within ``timeout``)."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 5)
        return code

    async def kill_leftovers(self) -> None:
        """Clean-up after a failed test: our supervisor, then anything it had started."""
        if self.proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await self.terminate()
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        for pid in self.all_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        kill_tasks(self.data_dir)


def kill_tasks(data_dir: Path) -> None:
    """SIGKILL every task the local scheduler started (detached from it by design: they outlive
    ``bay up``), by the pids in their sandboxes."""
    for doc in data_dir.glob("local/*/sandboxes/*/task.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads(doc.read_text())["pid"])
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def wait_gone(pid: int, timeout: float) -> None:
    """Until process ``pid`` has exited (a pidfd becomes readable then: no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(exited, timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


async def start_bay(
    cwd: Path,
    *,
    nats_url: str | None = None,
    timeout: float = 30.0,
    args: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
) -> BayUp:
    """``bay up [args]`` in ``cwd`` on free ports, returned once it has printed its ready line."""
    env = {
        **clean_environment(),
        "BAY_DATA_DIR": str(cwd / ".bay"),
        "BAY_GATEWAY_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_REGISTRY_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_SCHEDULER_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_DNS_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_DNS_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_DEPLOYER_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_AUTOSCALER_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_NATS_PORT": str(free_port()),
        # every process's /metrics on a free port (the fixed defaults may be another run's)
        **{f"BAY_{name}_METRICS_LISTEN": f"127.0.0.1:{free_port()}" for name in METRICS_PROCESSES},
        "PYTHONUNBUFFERED": "1",
        # tasks asked to go are killed at once (the deployment tests turn the drain back on)
        "BAY_DRAIN_SECONDS": "0",
    }
    if nats_url:
        env["BAY_NATS_URL"] = nats_url
    env.update(env_extra or {})
    proc = await asyncio.create_subprocess_exec(
        BAY,
        "up",
        *args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    bay = BayUp(cwd, env, proc)
    bay.reader = asyncio.create_task(bay._read())
    try:
        await bay.wait_for(READY, timeout)
    except BaseException:
        await bay.kill_leftovers()
        raise
    return bay


@contextlib.asynccontextmanager
async def running_bay(
    cwd: Path,
    *,
    nats_url: str | None = None,
    args: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> AsyncIterator[BayUp]:
    bay = await start_bay(cwd, nats_url=nats_url, args=args, env_extra=env_extra, timeout=timeout)
    try:
        yield bay
    finally:
        await bay.kill_leftovers()
