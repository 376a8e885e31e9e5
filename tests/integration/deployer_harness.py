"""The deployer in-process on the session's nats-server (its own NATS user), commanding a real
registry over gRPC; and a target runner: a stand-in cluster scheduler that runs exactly each
group's version targets, stopping ready tasks first (the worst case for the deployer's bounds).

The stand-in appends task events as the scheduler of ``local`` would (its NATS user), so the
deployer sees what it sees with a real scheduler; the test of the real local scheduler is in
test_deployer_rolling.py too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from bay.v1 import deploy_pb2_grpc

from libs.auth import TokenStore
from libs.clients import Caller, RegistryClient
from libs.errors import BayError
from libs.eventlog import Projection, StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import Event, EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.grpcutil import channel, make_server
from libs.natsconn import NatsConnection, connect
from libs.views import tasks as tv
from libs.views.groups import Group
from libs.views.live import open_view
from libs.views.platform import PlatformView
from services.deployer.adapters.registry import GrpcRegistry
from services.deployer.bootstrap import bootstrap
from services.deployer.grpc_api import DeployerServicer
from services.deployer.main import SERVICE_NAME
from services.deployer.ports import DnsPort
from services.deployer.service_layer.deployer import Deployer
from tests import natsauth
from tests.integration.registry_harness import RunningRegistry


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel until it is done: nats-py swallows a CancelledError that lands inside its flush (see
    libs/eventlog/projection.py), and a loop that lost its cancellation would go on for ever."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if task is not None and not task.cancelled():
        with contextlib.suppress(BaseException):
            task.result()


@dataclass
class RunningDeployer:
    conn: NatsConnection
    client: RegistryClient
    deployer: Deployer
    server: grpc.aio.Server
    chan: grpc.aio.Channel
    stub: deploy_pb2_grpc.DeployerStub
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def kill(self) -> None:
        """Gone at once, mid-step, as a SIGKILL leaves it: nothing flushed, nothing said."""
        await cancel(self.task)
        await self.chan.close()
        await self.server.stop(grace=0)
        await self.deployer.projection.stop(snapshot=False)
        await self.client.close()
        await self.conn.close()

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)
        await self.kill()


async def start_deployer(
    nats_url: str, registry: RunningRegistry, data_dir: Path, dns: DnsPort | None = None
) -> RunningDeployer:
    """The deployer with its gRPC API on a free port (tokens: the registry harness' file)."""
    conn = await connect(
        nats_url, name="test-deployer", wait_seconds=5, credentials=natsauth.credentials("deployer")
    )
    log = JetStreamEventLog(conn, StreamSettings(), timeout=2.0)
    client = RegistryClient(f"127.0.0.1:{registry.port}", timeout=5.0, caller=Caller.bearer(registry.token))
    deployer = await bootstrap(log, GrpcRegistry(client), dns=dns)
    servicer = DeployerServicer(deployer, TokenStore(data_dir / "tokens.json"))
    server, port = await make_server(
        "127.0.0.1:0", [(deploy_pb2_grpc.add_DeployerServicer_to_server, servicer, SERVICE_NAME)], nats=conn
    )
    await server.start()
    chan = channel(f"127.0.0.1:{port}")
    running = RunningDeployer(conn, client, deployer, server, chan, deploy_pb2_grpc.DeployerStub(chan))
    running.task = asyncio.create_task(deployer.run(running.stop_event))
    return running


class _WakingView(PlatformView):
    def __init__(self, cluster: str = "local") -> None:
        super().__init__(cluster=cluster)
        self.wake = asyncio.Event()

    def on_group(self, before: Group | None, after: Group) -> None:
        self.wake.set()

    def on_task(self, before: tv.Task | None, after: tv.Task, ev: Event) -> None:
        self.wake.set()


class TargetRunner:
    """Runs each group's targets: launches what is missing (RUNNING one round later), stops surplus
    tasks of a version (ready ones first) and every task of a version without a target."""

    def __init__(
        self, conn: NatsConnection, log: JetStreamEventLog, projection: Projection[_WakingView], cluster: str
    ) -> None:
        self.cluster = cluster
        self.conn = conn
        self.log = log
        self.projection = projection
        self.ids = itertools.count(1)
        self.task: asyncio.Task[None] | None = None
        self.last = 0

    @classmethod
    async def start(cls, nats_url: str, cluster: str = "local") -> TargetRunner:
        """Runs the targets whose spec is of ``cluster`` (as that cluster's scheduler, its NATS user)."""
        creds = natsauth.credentials(f"scheduler-{cluster}")
        conn = await connect(nats_url, name=f"test-targets-{cluster}", wait_seconds=5, credentials=creds)
        log = JetStreamEventLog(conn, StreamSettings(), timeout=2.0)
        runner = cls(
            conn, log, await open_view(log, f"targets-{cluster}", lambda: _WakingView(cluster)), cluster
        )
        runner.task = asyncio.create_task(runner.run())
        return runner

    async def _append(self, task_id: str, version: int, event: m.TaskEvent) -> None:
        env = make_envelope(
            to_pb(event), aggregate_type=subjects.TASK, aggregate_id=task_id, aggregate_version=version,
            meta=EventMeta.command("scheduler"), now=time.time(),
        )  # fmt: skip
        res = await self.log.append(subjects.task(self.cluster, task_id), env)
        self.last = max(self.last, res.sequence)

    async def round(self) -> None:
        view = self.projection.state
        now = time.time()
        for g in list(view.groups.values()):
            tasks = view.group_tasks(g.name)
            for t in tasks:
                if t.terminal:
                    continue
                if t.kill_reason:
                    await self._append(
                        t.id, t.version + 1, m.TaskStatusChanged(t.id, m.TaskState.KILLED, now)
                    )
                elif t.state == m.TaskState.STAGING:
                    await self._append(
                        t.id, t.version + 1, m.TaskStatusChanged(t.id, m.TaskState.RUNNING, now)
                    )
            mine = () if g.deleted else [t for t in g.targets if t.spec.cluster == self.cluster]
            targets = {t.version: t for t in mine}
            for t in tasks:
                if not t.terminal and not t.kill_reason and t.group_version not in targets:
                    await self._append(t.id, t.version + 1, m.TaskKillRequested(t.id, "surplus", now))
            for version, target in targets.items():
                alive = [
                    t for t in tasks if t.group_version == version and not t.terminal and not t.kill_reason
                ]
                alive.sort(key=lambda t: (not view.is_ready(t), t.id))
                for t in alive[: max(0, len(alive) - target.instances)]:
                    await self._append(t.id, t.version + 1, m.TaskKillRequested(t.id, "surplus", now))
                for _ in range(max(0, target.instances - len(alive))):
                    tid = f"{g.name}.{self.cluster}{next(self.ids):05d}"
                    launched = m.TaskLaunched(
                        tid, g.name, version, "h1", "h1", {"http": 31000}, 0.1, 32, 0, now,
                        cluster=self.cluster, host_address="127.0.0.1", service=target.spec.service_name,
                    )  # fmt: skip
                    await self._append(tid, 1, launched)
        await self.projection.wait_for(self.last)  # the next round sees what this one did

    async def run(self) -> None:
        view = self.projection.state
        while True:
            view.wake.clear()
            try:
                await self.round()
            except BayError:  # an append or a fold that took too long: the next round redoes it
                view.wake.set()
            await view.wake.wait()

    async def stop(self) -> None:
        await cancel(self.task)
        await self.projection.stop(snapshot=False)
        await self.conn.close()
