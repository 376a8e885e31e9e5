"""Benchmark 3: ScaleGroup round trips over gRPC against the real registry process.

Every call changes the instance count, so every call is a durable append to JetStream (file storage,
acked) followed by the registry's read-your-writes wait for its own projection.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from bay.v1 import registry_pb2, registry_pb2_grpc

from bench.infra import NatsServer, RegistryProcess, create_groups, register_local_cluster
from bench.report import Result, latency_figures

P99_TARGET_MS = 5.0
WARMUP = 200


async def _scale_loop(
    stub: registry_pb2_grpc.RegistryStub, md: tuple[tuple[str, str], ...], group: str, calls: int
) -> list[float]:
    latencies = []
    last_seq = 0
    for i in range(calls):
        req = registry_pb2.ScaleGroupRequest(name=group, instances=2 + i % 2)
        started = time.perf_counter()
        reply = await stub.ScaleGroup(req, metadata=md)
        latencies.append(time.perf_counter() - started)
        if reply.sequence <= last_seq or reply.group.spec.instances != req.instances:
            raise RuntimeError(f"ScaleGroup {group} #{i} did not append (sequence {reply.sequence})")
        last_seq = reply.sequence
    return latencies


async def run_scale(calls: int = 5_000, clients: int = 8) -> Result:
    res = Result("scale", "ScaleGroup round trip over gRPC, durable append included")
    res.params = {
        "calls": calls,
        "warm-up calls": WARMUP,
        "concurrent clients": clients,
        "registry": "python -m services.registry",
        "NATS": "1 node, file storage",
    }
    nats = NatsServer("scale")
    reg = RegistryProcess(nats.url, nats.dir / "registry")
    channels: list[grpc.aio.Channel] = []
    try:
        await reg.ready()
        channels = [grpc.aio.insecure_channel(reg.addr) for _ in range(clients)]
        stubs = [registry_pb2_grpc.RegistryStub(ch) for ch in channels]
        md = reg.metadata
        await register_local_cluster(stubs[0], md)
        await create_groups(stubs[0], md, ["solo"] + [f"c{i}" for i in range(clients)])
        await _scale_loop(stubs[0], md, "solo", WARMUP)

        started = time.perf_counter()
        seq = await _scale_loop(stubs[0], md, "solo", calls)
        wall = time.perf_counter() - started
        p = latency_figures(res, "1 client", seq)
        res.add("1 client throughput", calls / wall, "calls/s")

        per_client = calls // clients
        started = time.perf_counter()
        parts = await asyncio.gather(
            *(_scale_loop(stubs[i], md, f"c{i}", per_client) for i in range(clients))
        )
        wall = time.perf_counter() - started
        latency_figures(res, f"{clients} clients", [x for part in parts for x in part])
        res.add(f"{clients} clients throughput", per_client * clients / wall, "calls/s")
        res.target(f"1 client p99 < {P99_TARGET_MS:g} ms", p["p99"] < P99_TARGET_MS, f"{p['p99']:.3f} ms")
        res.notes.append(f"{clients} clients: {per_client} calls each, each on its own channel and group")
        res.notes.append(
            "client (plain grpc.aio channel), registry and nats-server share this machine's cores"
        )
        return res
    finally:
        for ch in channels:
            await ch.close()
        reg.close()
        nats.close()
