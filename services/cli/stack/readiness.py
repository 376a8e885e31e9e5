"""Is a service answering? Probes the supervisor awaits before it says ``bay: ready``.

A probe returns once its service answers and retries until then (the caller bounds it). Polling is
right here: there is nothing to subscribe to before the service listens.
"""

from __future__ import annotations

import asyncio

import grpc
import httpx
from bay.v1 import group_pb2, registry_pb2, registry_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.errors import Unavailable
from libs.grpcutil import error_from_rpc
from services.cli.stack.settings import StackSettings

POLL_SECONDS = 0.1
LOCAL_CLUSTER = group_pb2.Cluster(name="local", backend="local")


async def registry_serving(settings: StackSettings) -> None:
    """The registry's standard gRPC health check says SERVING."""
    async with grpc.aio.insecure_channel(settings.registry_address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(POLL_SECONDS)


async def gateway_healthy(settings: StackSettings) -> None:
    """The gateway's ``/healthz`` answers 200."""
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=1.0) as http:
        while True:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(POLL_SECONDS)


async def register_local_cluster(settings: StackSettings, token: str) -> None:
    """Register the cluster ``local`` (backend ``local``); the registry makes a repeat a no-op.

    Retries while the registry is unavailable; any other refusal (a ``local`` cluster registered
    with another backend) is raised as its BayError for the supervisor to report.
    """
    request = registry_pb2.RegisterClusterRequest(cluster=LOCAL_CLUSTER)
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(settings.registry_address) as ch:
        stub = registry_pb2_grpc.RegistryStub(ch)
        while True:
            try:
                await stub.RegisterCluster(request, metadata=metadata, timeout=5.0)
                return
            except grpc.aio.AioRpcError as exc:
                err = error_from_rpc(exc)
                if not isinstance(err, Unavailable):
                    raise err from exc
            await asyncio.sleep(POLL_SECONDS)
