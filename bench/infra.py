"""What a benchmark runs against: its own nats-server and real service processes, on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import grpc
from bay.v1 import group_pb2, registry_pb2, registry_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.auth import TokenStore
from libs.natsserver import free_port, start_nats

REPO = Path(__file__).resolve().parent.parent


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout``; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class NatsServer:
    """A nats-server with JetStream in a temporary directory; removed on close."""

    def __init__(self, label: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bay-bench-{label}-")
        self.dir = Path(self._tmp.name)
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = start_nats(self.dir / "nats", self.port, log_file=self.dir / "nats.log")
        # the stream and the lease bucket, as `bay up` makes them (services only wait for them)
        subprocess.run(
            [sys.executable, "-m", "services.cli", "nats", "setup"],
            cwd=REPO,
            env={**os.environ, "BAY_NATS_URL": self.url, "BAY_DATA_DIR": str(self.dir)},
            check=True,
            capture_output=True,
            timeout=60,
        )

    def close(self) -> None:
        stop_process(self.proc)
        self._tmp.cleanup()


class ServiceProcess:
    """``python -m <module>`` with BAY_* settings; output goes to a log file beside its data."""

    def __init__(self, module: str, env: Mapping[str, str], log_file: Path) -> None:
        self.module = module
        self.log_file = log_file
        # no metrics listener unless asked (the fixed default ports may be another run's)
        full_env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "BAY_METRICS_LISTEN": "", **env}
        self._out = open(log_file, "ab")
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=full_env,
            stdout=self._out,
            stderr=self._out,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.module} exited with {self.proc.returncode}:\n{tail}")

    def close(self) -> None:
        stop_process(self.proc, timeout=15)
        self._out.close()


async def wait_serving(proc: ServiceProcess, target: str, timeout: float = 60.0) -> float:
    """Seconds from spawn until the process's gRPC health says SERVING."""
    deadline = time.perf_counter() + timeout
    async with grpc.aio.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            proc.check_alive()
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - proc.spawned
            except grpc.aio.AioRpcError:
                pass
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{proc.module} not SERVING on {target} within {timeout:.0f}s")
            await asyncio.sleep(0.01)


class RegistryProcess:
    """The real registry (``python -m services.registry``) with an operator token for the benchmark."""

    def __init__(self, nats_url: str, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenStore(data_dir / "tokens.json")
        self.token = self.tokens.create("bench", "operator")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = ServiceProcess(
            "services.registry",
            {
                "BAY_NATS_URL": nats_url,
                "BAY_DATA_DIR": str(data_dir),
                "BAY_REGISTRY_LISTEN": self.addr,
                "BAY_LOG_LEVEL": "WARNING",
                **env,
            },
            data_dir / "registry.log",
        )
        self.startup_seconds = 0.0

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    async def ready(self) -> None:
        self.startup_seconds = await wait_serving(self.proc, self.addr)

    def close(self) -> None:
        self.proc.close()


def group_spec(name: str, instances: int = 1) -> group_pb2.GroupSpec:
    """A realistic group: a command with env, a port, an HTTP check, labels and a constraint."""
    return group_pb2.GroupSpec(
        name=name,
        cluster="local",
        cmd="python -m http.server $PORT0",
        env={"APP_ENV": "production", "LOG_LEVEL": "info"},
        instances=instances,
        resources=group_pb2.Resources(cpus=0.25, mem=256),
        ports=[group_pb2.PortSpec(name="http")],
        labels={"team": "feed", "tier": "web"},
        constraints=[group_pb2.Constraint(field="zone", op="GROUP_BY", value="2")],
        health_check=group_pb2.HealthCheck(
            protocol="http",
            path="/",
            port_name="http",
            grace_period_seconds=30,
            interval_seconds=5,
            timeout_seconds=2,
            max_consecutive_failures=3,
        ),
    )


async def register_local_cluster(
    stub: registry_pb2_grpc.RegistryStub, md: tuple[tuple[str, str], ...]
) -> None:
    cluster = group_pb2.Cluster(name="local", backend="local")
    await stub.RegisterCluster(registry_pb2.RegisterClusterRequest(cluster=cluster), metadata=md)


async def create_groups(
    stub: registry_pb2_grpc.RegistryStub,
    md: tuple[tuple[str, str], ...],
    names: list[str],
    concurrency: int = 16,
) -> None:
    """Create groups through the registry's gRPC API, a few calls in flight at a time."""
    queue = list(reversed(names))

    async def worker() -> None:
        while queue:
            name = queue.pop()
            await stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=group_spec(name)), metadata=md)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
