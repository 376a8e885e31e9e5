"""What the autoscaling benchmarks run against: a nats-server with Bay's users, the real registry,
one scheduler (the local backend, or the Mesos backend on the simulated master), Bay DNS, and the real
autoscaler (``python -m services.autoscaler``), each a process connecting as its own NATS user as
under ``bay up``; the benchmark's own connection is the set-up user.

``Recorder`` watches the group from the benchmark's side: through a live ``PlatformView`` (the shared
readiness rule), the count asked for, the tasks RUNNING and ready, every ``AutoscaleDecided``; and,
once a second, the cpu value the policy sees, computed by the autoscaler's own ``Observer`` over
a ``UsageWindow`` fed by the same ``bay.usage.<cluster>.<group>`` samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from bay.v1 import autoscale_pb2, group_pb2, registry_pb2, registry_pb2_grpc, scheduler_pb2

from bench.infra import (
    REPO,
    RegistryProcess,
    ServiceProcess,
    register_local_cluster,
    stop_process,
    wait_serving,
)
from bench.scheduler import SchedulerProcess, kill_sandboxes
from libs.clients import AutoscalerClient, Caller
from libs.eventlog import Projection, StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import model as m
from libs.events.model import TaskState
from libs.natsconn import NatsConnection, connect
from libs.natsserver import free_port, server_config, start_nats
from libs.natsusers import NatsUsers, public_key, write_private
from libs.samples.pushed import PushedMetrics
from libs.samples.usage import UsageWindow
from libs.samples.usage import points as usage_points
from libs.views import PlatformView, open_view
from services.autoscaler.adapters.observe import Observer
from services.autoscaler.adapters.wire import metric_from_pb
from services.autoscaler.domain.proportional import propose
from services.autoscaler.settings import AutoscalerSettings
from services.scheduler.adapters.usage import DEFAULT_INTERVAL

#: BAY_AUTOSCALER_USAGE_SECONDS when it is not set (the README's default)
DEFAULT_USAGE_SECONDS: float = AutoscalerSettings.model_fields["autoscaler_usage_seconds"].default
#: BAY_USAGE_INTERVAL_SECONDS when it is not set: how often a local scheduler publishes usage
DEFAULT_PUBLISH_SECONDS: float = DEFAULT_INTERVAL["local"]

LOCAL_ENV = {
    "BAY_LOCAL_CGROUPS": "false",  # as local-scale: usage is summed over each task's processes
    "BAY_LOCAL_CPUS": "64",
    "BAY_LOCAL_MEM": "65536",
    "BAY_LOCAL_PORT_BEGIN": "24000",
    "BAY_LOCAL_PORT_END": "25999",
}


class AuthNats:
    """nats-server with JetStream and Bay's authorization (a user per service, libs.natsusers); a
    connection without credentials is the set-up user. In a temporary directory, removed on close."""

    def __init__(self, label: str, roles: tuple[str, ...]) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bay-bench-{label}-")
        self.dir = Path(self._tmp.name)
        self.dir.chmod(0o711)  # tasks, under uids of their own, reach their sandboxes by absolute path
        self.users = NatsUsers(self.dir / "auth")
        auth = self.users.write_auth_config(("setup", *roles))
        config = self.dir / "nats.conf"
        setup = public_key(self.users.service_seed("setup"))
        write_private(config, server_config(config, include=auth, extra=f"no_auth_user: {setup}").encode())
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = start_nats(
            self.dir / "nats", self.port, log_file=self.dir / "nats.log", config_file=config
        )
        subprocess.run(  # the stream and the lease bucket, as `bay up` makes them
            [sys.executable, "-m", "services.cli", "nats", "setup"],
            cwd=REPO,
            env={**os.environ, "BAY_NATS_URL": self.url, "BAY_DATA_DIR": str(self.dir)},
            check=True,
            capture_output=True,
            timeout=60,
        )

    def env(self, role: str) -> dict[str, str]:
        return {"BAY_NATS_NKEY_SEED": str(self.users.service_seed(role))}

    def close(self) -> None:
        stop_process(self.proc)
        self._tmp.cleanup()


class Watcher(PlatformView):
    """The shared view, plus the autoscaler's decisions as they are folded (monotonic arrival)."""

    def __init__(self) -> None:
        super().__init__(cluster=None)
        self.decided: list[tuple[float, autoscale_pb2.AutoscaleDecision]] = []

    def on_other(self, ev: Any) -> None:
        if isinstance(ev.data, m.AutoscaleDecided):
            self.decided.append((time.monotonic(), ev.data.decision))


@dataclass(frozen=True)
class Counts:
    t: float  # monotonic
    instances: int
    running: int
    ready: int


@dataclass(frozen=True)
class Seen:
    """The cpu metric as the policy sees it at ``t``: the mean utilisation of the ready tasks with
    samples (a fraction of their request), the load in tasks at the target, and what it asks for."""

    t: float
    current: int
    ready: int
    value: float | None
    need: float | None
    recommendation: int | None


@dataclass
class Recorder:
    view: Watcher
    usage: UsageWindow
    group: str
    policy: autoscale_pb2.AutoscalePolicy
    usage_seconds: float
    counts: list[Counts] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    batches: list[tuple[float, float]] = field(default_factory=list)  # (arrival, mean utilisation)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def watch_batches(self, client: Any, subject: str) -> Any:
        """Each usage batch of the group as it arrives: when, and its samples' mean utilisation.
        Subscribe before the tasks start."""

        async def seen(msg: Any) -> None:
            batch = scheduler_pb2.UsageBatch.FromString(msg.data)
            points = usage_points(batch, time.monotonic())
            cpus = [p.cpu for p in points if p.cpu is not None]
            if cpus:
                self.batches.append((time.monotonic(), sum(cpus) / len(cpus)))

        sub = await client.subscribe(subject, cb=seen)
        await client.flush()
        return sub

    def now(self) -> Counts:
        g = self.view.live_group(self.group)
        tasks = self.view.group_tasks(self.group)
        running = sum(1 for t in tasks if t.state == TaskState.RUNNING)
        ready = len(self.view.ready_tasks(self.group))
        return Counts(time.monotonic(), g.instances if g is not None else 0, running, ready)

    async def _count(self) -> None:
        while True:
            c = self.now()
            last = self.counts[-1] if self.counts else None
            if last is None or (last.instances, last.running, last.ready) != (
                c.instances,
                c.running,
                c.ready,
            ):
                self.counts.append(c)
            await asyncio.sleep(0.02)  # the recorder's resolution

    async def _observe(self) -> None:
        observer = Observer(self.usage, PushedMetrics(), usage_seconds=self.usage_seconds)
        metric = metric_from_pb(self.policy.metrics[0])
        tolerance = self.policy.tolerance if self.policy.HasField("tolerance") else 0.1
        while True:
            ready = self.view.ready_tasks(self.group)
            g = self.view.live_group(self.group)
            current = g.instances if g is not None else 0
            since = self.view.ready_times(ready)
            obs = (await observer.observe(self.group, self.policy, current, ready, since)).observation
            p = propose(metric, obs, tolerance)
            self.seen.append(Seen(time.monotonic(), current, len(ready), p.value, p.need, p.recommendation))
            await asyncio.sleep(1.0)  # the autoscaler's tick

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._count()), asyncio.create_task(self._observe())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def first(self, ok: Any, since: float) -> Counts | None:
        return next((c for c in self.counts if c.t >= since and ok(c)), None)

    async def until(self, ok: Any, what: str, timeout: float) -> Counts:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.now()
            if ok(c):
                return c
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{what} not within {timeout:g} s (last: {self.now()})")


@dataclass
class Stack:
    nats: AuthNats
    conn: NatsConnection
    registry: registry_pb2_grpc.RegistryStub
    metadata: tuple[tuple[str, str], ...]
    autoscaler: AutoscalerClient
    view: Watcher
    usage: UsageWindow
    cluster: str
    usage_seconds: float
    dns_port: int = 0
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    async def create_group(self, spec: group_pb2.GroupSpec) -> None:
        await self.registry.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=self.metadata)

    async def set_policy(self, policy: autoscale_pb2.AutoscalePolicy) -> None:
        await self.autoscaler.set_policy(policy)

    def recorder(self, group: str, policy: autoscale_pb2.AutoscalePolicy) -> Recorder:
        return Recorder(self.view, self.usage, group, policy, self.usage_seconds)

    def check_alive(self) -> None:
        for p in self.processes.values():
            p.check_alive()


@contextlib.asynccontextmanager
async def running_stack(
    label: str,
    *,
    cluster: str = "local",
    sim_address: str = "",
    usage_seconds: float | None = None,
    scheduler_env: dict[str, str] | None = None,
    dns: bool = True,
) -> AsyncIterator[Stack]:
    """The stack for ``cluster`` (``local``; any other name is a Mesos cluster at ``sim_address``).
    ``usage_seconds``: BAY_AUTOSCALER_USAGE_SECONDS (None: the autoscaler's default)."""
    sched_role = f"scheduler-{cluster}"
    nats = AuthNats(label, ("registry", "dns", "autoscaler", sched_role))
    procs: dict[str, ServiceProcess] = {}
    reg = RegistryProcess(nats.url, nats.dir / "registry", **nats.env("registry"))
    sched: SchedulerProcess | None = None
    resources: list[Any] = []
    try:
        procs["registry"] = reg.proc
        await reg.ready()
        channel = grpc.aio.insecure_channel(reg.addr)
        resources.append(channel)
        rstub = registry_pb2_grpc.RegistryStub(channel)
        md = reg.metadata
        if cluster == "local":
            await register_local_cluster(rstub, md)
        else:
            c = group_pb2.Cluster(name=cluster, backend="mesos", address=sim_address)
            await rstub.RegisterCluster(registry_pb2.RegisterClusterRequest(cluster=c), metadata=md)
        env = {**(LOCAL_ENV if cluster == "local" else {}), **(scheduler_env or {})}
        sched = SchedulerProcess(
            nats.url, nats.dir / "sched", reg, BAY_CLUSTER=cluster, **nats.env(sched_role), **env
        )
        procs["scheduler"] = sched.proc
        common = {"BAY_NATS_URL": nats.url, "BAY_TOKENS_FILE": str(reg.data_dir / "tokens.json")}
        dns_port = 0
        if dns:
            dns_port, dns_grpc = free_port(), f"127.0.0.1:{free_port()}"
            (nats.dir / "dns").mkdir()
            procs["dns"] = ServiceProcess(
                "services.dns",
                {
                    **common,
                    **nats.env("dns"),
                    "BAY_DATA_DIR": str(nats.dir / "dns"),
                    "BAY_DNS_LISTEN": f"127.0.0.1:{dns_port}",
                    "BAY_DNS_GRPC_LISTEN": dns_grpc,
                    "BAY_LOG_LEVEL": "WARNING",
                },
                nats.dir / "dns" / "dns.log",
            )
        addr = f"127.0.0.1:{free_port()}"
        (nats.dir / "autoscaler").mkdir()
        scaler_env = {
            **common,
            **nats.env("autoscaler"),
            "BAY_DATA_DIR": str(nats.dir / "autoscaler"),
            "BAY_REGISTRY_ADDR": reg.addr,
            "BAY_AUTOSCALER_LISTEN": addr,
            "BAY_LOG_LEVEL": "WARNING",
        }
        if usage_seconds is not None:
            scaler_env["BAY_AUTOSCALER_USAGE_SECONDS"] = f"{usage_seconds:g}"
        procs["autoscaler"] = ServiceProcess(
            "services.autoscaler", scaler_env, nats.dir / "autoscaler" / "autoscaler.log"
        )
        await wait_serving(sched.proc, sched.addr)
        if dns:
            await wait_serving(procs["dns"], dns_grpc)
        await wait_serving(procs["autoscaler"], addr)
        conn = await connect(nats.url, name="bench", wait_seconds=5)  # no credentials: the set-up user
        resources.append(conn)
        watch: Projection[Watcher] = await open_view(
            JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "bench-watch", Watcher
        )
        resources.append(watch)
        usage = UsageWindow()
        resources.append(await usage.subscribe(conn.client))
        client = AutoscalerClient(addr, timeout=5.0, caller=Caller.bearer(reg.token))
        resources.append(client)
        yield Stack(
            nats,
            conn,
            rstub,
            md,
            client,
            watch.state,
            usage,
            cluster,
            usage_seconds if usage_seconds is not None else DEFAULT_USAGE_SECONDS,
            dns_port,
            procs,
        )
    finally:
        for r in reversed(resources):
            with contextlib.suppress(Exception):
                await _close(r)
        for name in ("autoscaler", "dns", "scheduler", "registry"):
            if name in procs:
                procs[name].close()
        if sched is not None and cluster == "local":
            kill_sandboxes(sched.data_dir)
        nats.close()


async def _close(r: Any) -> None:
    if isinstance(r, Projection):
        await r.stop(snapshot=False)
    elif hasattr(r, "unsubscribe"):
        await r.unsubscribe()
    else:
        await r.close()
