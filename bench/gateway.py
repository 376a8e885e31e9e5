"""Benchmark 4: GET /v1/groups with 1,000 groups under concurrent HTTP load, against 127.0.0.1 only.

The gateway (``python -m services.gateway``) asks the real registry process over gRPC. The load
generator is bounded: a fixed number of workers for a fixed time, each waiting for its answer
before it asks again.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import time
from collections.abc import Awaitable, Callable

import grpc
import httpx
from bay.v1 import registry_pb2, registry_pb2_grpc

from bench.infra import NatsServer, RegistryProcess, ServiceProcess, create_groups, register_local_cluster
from bench.report import Result, latency_figures
from libs.natsserver import free_port


async def _wait_listing(
    client: httpx.AsyncClient, proc: ServiceProcess, groups: int, timeout: float = 60
) -> float:
    """Seconds from spawn until the gateway answers the listing with every group."""
    deadline = time.perf_counter() + timeout
    last = ""
    while time.perf_counter() < deadline:
        proc.check_alive()
        try:
            r = await client.get("/v1/groups")
            if r.status_code == 200 and len(r.json()["groups"]) == groups:
                return time.perf_counter() - proc.spawned
            last = f"HTTP {r.status_code}: {r.text[:200]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        await asyncio.sleep(0.05)
    raise TimeoutError(f"gateway did not list {groups} groups within {timeout:.0f}s (last: {last})")


async def run_gateway(groups: int = 1_000, workers: int = 32, duration: float = 10.0) -> Result:
    res = Result("gateway", f"GET /v1/groups with {groups:,} groups under concurrent load")
    res.params = {
        "groups": groups,
        "workers": workers,
        "duration": f"{duration:g} s",
        "client": "httpx.AsyncClient, keep-alive",
        "target host": "127.0.0.1",
    }
    if importlib.util.find_spec("services.gateway.__main__") is None:
        res.notes.append("skipped: services/gateway/__main__.py does not exist yet")
        return res
    nats = NatsServer("gateway")
    reg = RegistryProcess(nats.url, nats.dir / "registry")
    gateway: _Gateway | None = None
    try:
        await reg.ready()
        async with grpc.aio.insecure_channel(reg.addr) as ch:
            stub = registry_pb2_grpc.RegistryStub(ch)
            await register_local_cluster(stub, reg.metadata)
            started = time.perf_counter()
            await create_groups(stub, reg.metadata, [f"svc-{i:04d}" for i in range(groups)])
            res.add(f"creating {groups:,} groups over gRPC (setup)", time.perf_counter() - started, "s")
            grpc_alone = await _sequential(
                lambda: stub.ListGroups(registry_pb2.ListGroupsRequest(), metadata=reg.metadata)
            )
        gateway = _start_gateway(nats, reg)
        port = gateway.port
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {reg.tokens.create('bench-viewer', 'viewer')}"},
            limits=limits,
            timeout=30,
        ) as client:
            res.add("gateway spawn -> full listing", await _wait_listing(client, gateway.proc, groups), "s")
            size = len((await client.get("/v1/groups")).content)
            http_alone = await _sequential(lambda: _get_ok(client))
            latencies, errors, wall = await _load(client, workers, duration)
        res.add("response size", size, "bytes")
        res.add("registry ListGroups alone (gRPC, 1 caller) p50", grpc_alone * 1000, "ms")
        res.add("GET /v1/groups alone (1 worker) p50", http_alone * 1000, "ms")
        res.add("requests answered 200", len(latencies), "events")
        res.add("requests failed", sum(errors.values()), "events")
        res.add("throughput (200s)", len(latencies) / wall, "requests/s")
        if latencies:
            latency_figures(res, f"{workers} workers latency", latencies)
        if errors:
            res.notes.append("failures: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items())))
        res.notes.append("load generator, gateway, registry and nats-server share this machine's cores")
        return res
    finally:
        if gateway is not None:
            gateway.proc.close()
        reg.close()
        nats.close()


class _Gateway:
    def __init__(self, proc: ServiceProcess, port: int) -> None:
        self.proc = proc
        self.port = port


def _start_gateway(nats: NatsServer, reg: RegistryProcess) -> _Gateway:
    port = free_port()
    gw_dir = nats.dir / "gateway"
    gw_dir.mkdir()
    env = {
        "BAY_NATS_URL": nats.url,
        "BAY_DATA_DIR": str(gw_dir),
        "BAY_TOKENS_FILE": str(reg.data_dir / "tokens.json"),
        "BAY_REGISTRY_ADDR": reg.addr,
        "BAY_GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "BAY_LOG_LEVEL": "WARNING",
    }
    return _Gateway(ServiceProcess("services.gateway", env, gw_dir / "gateway.log"), port)


async def _get_ok(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/groups")
    r.raise_for_status()


async def _sequential(call: Callable[[], Awaitable[object]], n: int = 20) -> float:
    """Median latency (s) of ``n`` calls made one after another: the cost of one request unloaded."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def _load(
    client: httpx.AsyncClient, workers: int, duration: float
) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    started = time.perf_counter()
    end = started + duration

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                r = await client.get("/v1/groups")
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                key = f"HTTP {r.status_code}"
                errors[key] = errors.get(key, 0) + 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return latencies, errors, time.perf_counter() - started
