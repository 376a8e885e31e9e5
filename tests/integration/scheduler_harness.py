"""A registry in-process and a scheduler as a real subprocess (so that a test can SIGKILL it), on the
session's nats-server, with real gRPC. Every wait is for an answer or a condition, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from bay.v1 import group_pb2, registry_pb2, scheduler_pb2, scheduler_pb2_grpc

from libs.grpcutil import channel
from libs.natsserver import free_port
from tests import natsauth
from tests.integration.registry_harness import RunningRegistry

DEADLINE = 15.0


def task_readable_dir() -> Path:
    """A directory tasks can read (they run as uids of their own and cannot enter a test's tmp_path):
    where a test leaves files for its tasks to find, e.g. tinyhttp's sick flags."""
    path = Path(tempfile.mkdtemp(prefix="bay-test-"))
    path.chmod(0o755)
    return path


def kill_tasks(work_dir: Path) -> None:
    """SIGKILL the process group of every task a test left behind (pids from the sandboxes)."""
    from tests.contract.test_backend_contract import kill_leftovers

    kill_leftovers(work_dir)


@dataclass
class SchedulerProcess:
    """``python -m services.scheduler`` for one cluster; ``restart`` keeps its data directory."""

    registry: RunningRegistry
    nats_url: str
    data_dir: Path
    cluster: str = "local"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_name: str = ""  # a second process of one cluster writes its own log
    proc: subprocess.Popen[bytes] | None = None
    chan: grpc.aio.Channel | None = None
    stub: scheduler_pb2_grpc.SchedulerStub | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"scheduler-{self.cluster}{'-' + self.log_name if self.log_name else ''}.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
        env.update(
            {
                "BAY_NATS_URL": self.nats_url,
                "BAY_DATA_DIR": str(self.data_dir),
                "BAY_CLUSTER": self.cluster,
                "BAY_SCHEDULER_LISTEN": f"127.0.0.1:{self.port}",
                "BAY_TOKENS_FILE": str(self.data_dir / "tokens.json"),
                "BAY_LOCAL_CGROUPS": "false",
                "BAY_LOCAL_CPUS": "8",
                "BAY_LOCAL_MEM": "8192",
                "BAY_LOCAL_HOSTNAME": "bay-test-host",
                "BAY_KILL_GRACE_SECONDS": "2",
                "BAY_USAGE_INTERVAL_SECONDS": "0.2",
                "BAY_METRICS_LISTEN": "",
                **natsauth.env(f"scheduler-{self.cluster}"),
                **self.extra_env,
            }
        )
        return env

    async def start(self, *, wait: bool = True) -> None:
        if ttl := self.extra_env.get("BAY_LEASE_SECONDS"):
            await natsauth.set_up(self.nats_url, float(ttl))
        out = self.log_path.open("ab")
        # a plain Popen (spawning does not block): tests SIGKILL it and reap it synchronously
        self.proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "services.scheduler"], env=self.env(), stdout=out, stderr=out
        )
        out.close()
        self.chan = channel(f"127.0.0.1:{self.port}")
        self.stub = scheduler_pb2_grpc.SchedulerStub(self.chan)
        if wait:
            await self.until_serving()

    async def until_serving(self) -> None:
        """The scheduler listens only once it is ready: wait for its port (or its exit)."""
        assert self.chan is not None and self.proc is not None
        proc = self.proc
        ready = asyncio.ensure_future(self.chan.channel_ready())
        exited = asyncio.ensure_future(asyncio.to_thread(proc.wait))
        try:
            done, _ = await asyncio.wait(
                {ready, exited}, timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if exited in done:
            raise AssertionError(f"scheduler exited ({proc.returncode}):\n{self.log_tail()}")
        if ready not in done:
            raise AssertionError(f"scheduler not serving in {DEADLINE}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def md(self) -> list[tuple[str, str]]:
        return self.registry.md()

    def sigkill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    async def stop(self) -> None:
        if self.chan is not None:
            await self.chan.close()
            self.chan = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    async def restart(self, *, kill: bool = False) -> None:
        if kill:
            self.sigkill()
        await self.stop()
        await self.start()

    # ---- queries ----

    async def status(self, group: str) -> scheduler_pb2.GroupStatusReply:
        assert self.stub is not None
        reply: scheduler_pb2.GroupStatusReply = await self.stub.GroupStatus(
            scheduler_pb2.GroupStatusRequest(group=group), metadata=self.md(), timeout=5
        )
        return reply

    async def tasks(self, group: str = "", *, terminal: bool = False) -> list:  # type: ignore[type-arg]
        assert self.stub is not None
        reply = await self.stub.ListTasks(
            scheduler_pb2.ListTasksRequest(group=group, include_terminal=terminal),
            metadata=self.md(),
            timeout=5,
        )
        return list(reply.tasks)

    async def until(
        self,
        group: str,
        ok: Callable[[scheduler_pb2.GroupStatusReply], bool],
        timeout: float = DEADLINE,
    ) -> scheduler_pb2.GroupStatusReply:
        """Watch the group's status (a server stream) until ``ok`` holds, or fail with the last one."""
        assert self.stub is not None
        last: scheduler_pb2.GroupStatusReply | None = None

        async def watch() -> scheduler_pb2.GroupStatusReply:
            nonlocal last
            assert self.stub is not None
            call = self.stub.WatchGroup(scheduler_pb2.GroupStatusRequest(group=group), metadata=self.md())
            try:
                async for reply in call:
                    last = reply
                    if ok(reply):
                        return reply
            finally:
                call.cancel()
            raise AssertionError("watch ended")

        try:
            return await asyncio.wait_for(watch(), timeout)
        except TimeoutError:
            raise AssertionError(f"group {group}: condition not met in {timeout}s; last status:\n{last}\n"
                                 f"scheduler log:\n{self.log_tail()}") from None  # fmt: skip

    async def until_tasks(
        self, group: str, ok: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE
    ) -> dict[str, Any]:
        """Every status change of the group, look at its tasks (ended ones too) until ``ok`` holds."""
        seen: dict[str, Any] = {}

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        assert self.stub is not None
        call = self.stub.WatchGroup(scheduler_pb2.GroupStatusRequest(group=group), metadata=self.md())
        try:
            while True:
                seen = {t.id: t for t in await self.tasks(group, terminal=True)}
                if ok(seen):
                    return seen
                left = deadline - loop.time()
                if left <= 0:
                    raise AssertionError(f"group {group}: tasks never matched; last:\n{list(seen.values())}\n"
                                         f"scheduler log:\n{self.log_tail()}")  # fmt: skip
                try:
                    await asyncio.wait_for(call.read(), left)
                except TimeoutError:
                    pass
        finally:
            call.cancel()


async def register_cluster(registry: RunningRegistry, name: str, backend: str, address: str = "") -> None:
    assert registry.stub is not None
    with contextlib.suppress(grpc.aio.AioRpcError):
        await registry.stub.RegisterCluster(
            registry_pb2.RegisterClusterRequest(
                cluster=group_pb2.Cluster(name=name, backend=backend, address=address)
            ),
            metadata=registry.md(),
        )


async def create_group(registry: RunningRegistry, **spec: object) -> None:
    from libs.spec import validate_spec
    from libs.spec_pb import spec_to_pb

    await registry.stub.CreateGroup(
        registry_pb2.CreateGroupRequest(spec=spec_to_pb(validate_spec(spec))), metadata=registry.md()
    )


async def scale(registry: RunningRegistry, name: str, instances: int) -> None:
    await registry.stub.ScaleGroup(
        registry_pb2.ScaleGroupRequest(name=name, instances=instances), metadata=registry.md()
    )
