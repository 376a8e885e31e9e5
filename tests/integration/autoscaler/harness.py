"""The autoscaler as a real process (``python -m services.autoscaler``, its own NATS user and operator
token) beside the real registry (in-process, the ``registry`` fixture) and the real scheduler of
``local``, with a view of the log that records what the autoscaler did: its decisions, its window
snapshots, and every change of a group's count."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bay.v1 import autoscale_pb2

from libs.clients import AutoscalerClient, Caller, ServiceClient
from libs.eventlog import Projection, StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import Event
from libs.events import model as m
from libs.natsconn import NatsConnection, connect
from libs.natsserver import free_port
from libs.views.groups import Group
from libs.views.live import open_view
from libs.views.platform import PlatformView
from tests import natsauth
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import SchedulerProcess
from tests.poll import poll_until

DEADLINE = 30.0


class Watcher(PlatformView):
    def __init__(self) -> None:
        super().__init__(cluster=None)
        self.decided: list[m.AutoscaleDecided] = []
        self.decided_for: list[str] = []  # the group of each of decided
        self.windows: list[tuple[str, m.AutoscaleWindow]] = []  # (group, snapshot)
        self.changes: dict[str, list[tuple[int, int]]] = {}  # group -> (from, to) of each count change

    def on_other(self, ev: Event) -> None:
        if isinstance(ev.data, m.AutoscaleDecided):
            self.decided.append(ev.data)
            self.decided_for.append(ev.aggregate_id)
        elif isinstance(ev.data, m.AutoscaleWindow):
            self.windows.append((ev.aggregate_id, ev.data))

    def on_group(self, before: Group | None, after: Group) -> None:
        if before is not None and before.instances != after.instances:
            self.changes.setdefault(after.name, []).append((before.instances, after.instances))

    def decisions(self, group: str) -> list[autoscale_pb2.AutoscaleDecision]:
        return [d.decision for d, g in zip(self.decided, self.decided_for, strict=True) if g == group]

    def steps(self, group: str) -> list[tuple[int, int]]:
        """(from, to) of each of the group's AutoscaleDecided."""
        return [(getattr(d, "from"), d.to) for d in self.decisions(group)]

    def last_high(self, group: str, value: int) -> float | None:
        """When, as the log's window snapshots have it, a recommendation of ``value`` or more was
        last made for the group (what a scale-down below ``value`` waits a down window after)."""
        times = [e.at for g, w in self.windows if g == group for e in w.state.highs if e.value >= value]
        times += [
            at(d) for d in self.decisions(group) if d.HasField("recommendation") and d.recommendation >= value
        ]
        return max(times, default=None)

    def instances(self, group: str) -> int:
        g = self.live_group(group)
        return g.instances if g is not None else -1


@dataclass
class AutoscalerProcess:
    nats_url: str
    registry: RunningRegistry
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        caller = Caller.bearer(self.registry.token)
        self.client = AutoscalerClient(f"127.0.0.1:{self.port}", timeout=5.0, caller=caller)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "autoscaler.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
        env.update(
            {
                "BAY_NATS_URL": self.nats_url,
                "BAY_DATA_DIR": str(self.data_dir),
                "BAY_TOKENS_FILE": str(self.data_dir / "tokens.json"),
                "BAY_REGISTRY_ADDR": f"127.0.0.1:{self.registry.port}",
                "BAY_AUTOSCALER_LISTEN": f"127.0.0.1:{self.port}",
                "BAY_AUTOSCALER_USAGE_SECONDS": "1",
                "BAY_AUTOSCALER_SNAPSHOT_SECONDS": "1",
                "BAY_METRICS_LISTEN": "",
                **natsauth.env("autoscaler"),
                **self.env,
            }
        )
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.autoscaler"], env=env, stdout=out, stderr=out
        )
        out.close()

    async def serving(self) -> None:
        async def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()[-3000:]
            async with ServiceClient(f"127.0.0.1:{self.port}", timeout=1.0) as health:
                try:
                    await asyncio.wait_for(health.until_serving(poll_seconds=0.05), 0.5)
                    return True
                except TimeoutError:
                    return False

        await poll_until(up, "the autoscaler serving", DEADLINE)

    async def restart(self) -> None:
        self.start()
        await self.serving()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    async def status(self, group: str) -> autoscale_pb2.AutoscaleStatus:
        return await self.client.status(group)

    async def evaluated_after(self, group: str, t: float) -> autoscale_pb2.AutoscaleStatus | None:
        """The status, once its latest evaluation is later than ``t`` (epoch seconds)."""
        s = await self.client.status(group)
        return s if s.HasField("latest") and at(s.latest) > t else None


def at(d: autoscale_pb2.AutoscaleDecision) -> float:
    return d.at.ToNanoseconds() / 1e9


@dataclass
class Platform:
    conn: NatsConnection  # the set-up's: may publish samples and make streams
    watch: Projection[Watcher]
    scheduler: SchedulerProcess
    autoscaler: AutoscalerProcess
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def view(self) -> Watcher:
        return self.watch.state

    def run(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A publisher or load generator for the test's length (cancelled at its end)."""
        self.background.append(asyncio.create_task(job()))


@asynccontextmanager
async def platform(
    registry: RunningRegistry,
    nats_url: str,
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    scheduler_env: dict[str, str] | None = None,
) -> AsyncIterator[Platform]:
    """The scheduler of ``local`` (no usage of its own unless ``scheduler_env`` says so), the
    autoscaler serving, and the watching view."""
    sched_env = {"BAY_USAGE_INTERVAL_SECONDS": "3600", **(scheduler_env or {})}
    sched = SchedulerProcess(registry, nats_url, data_dir, extra_env=sched_env)
    await sched.start()
    conn = await connect(nats_url, name="watch", wait_seconds=5)
    watch = await open_view(JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "watch", Watcher)
    autoscaler = AutoscalerProcess(nats_url, registry, data_dir, env or {})
    p = Platform(conn, watch, sched, autoscaler)
    try:
        autoscaler.start()
        await autoscaler.serving()
        yield p
    finally:
        for job in p.background:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        await autoscaler.client.close()
        autoscaler.stop()
        await sched.stop()
        await watch.stop(snapshot=False)
        await conn.close()
