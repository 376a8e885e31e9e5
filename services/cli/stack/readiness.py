"""Is a service answering? Probes the supervisor awaits before it says ``bay: ready``.

A probe returns once its service answers and retries until then (the caller bounds it). Polling is
right here: there is nothing to subscribe to before the service listens.
"""

from __future__ import annotations

import asyncio

import httpx
from bay.v1 import group_pb2

from libs.clients import Caller, RegistryClient, ServiceClient
from libs.errors import Unavailable
from services.cli.stack.settings import StackSettings

POLL_SECONDS = 0.1


async def grpc_serving(address: str) -> None:
    """The standard gRPC health check at ``address`` says SERVING (for the server as a whole)."""
    async with ServiceClient(address, timeout=1.0) as service:
        await service.until_serving(poll_seconds=POLL_SECONDS)


async def registry_serving(settings: StackSettings) -> None:
    """The registry's standard gRPC health check says SERVING."""
    await grpc_serving(settings.registry_address)


async def scheduler_serving(settings: StackSettings, address: str = "") -> None:
    """A scheduler's gRPC health check says SERVING: it serves only once its cluster is registered
    and its backend is up, so this also says the cluster can run tasks."""
    await grpc_serving(address or settings.scheduler_address)


async def dns_serving(settings: StackSettings) -> None:
    """The DNS service's gRPC health check says SERVING: it opens gRPC only after it has folded the
    event log and bound its DNS port, so this also says names resolve."""
    await grpc_serving(settings.dns_grpc_address)


async def deployer_serving(settings: StackSettings) -> None:
    """The deployer's gRPC health check says SERVING: it serves once it has replayed the log."""
    await grpc_serving(settings.deployer_address)


async def autoscaler_serving(settings: StackSettings) -> None:
    """The autoscaler's gRPC health check says SERVING: it serves once it has replayed the log."""
    await grpc_serving(settings.autoscaler_address)


async def sim_master_answering(settings: StackSettings) -> None:
    """The simulated Mesos master answers ``GET /version`` (what pymesos asks first)."""
    async with httpx.AsyncClient(base_url=f"http://{settings.sim_master_address}", timeout=1.0) as http:
        while True:
            try:
                if (await http.get("/version")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(POLL_SECONDS)


async def http_ok(base_url: str, path: str) -> None:
    """``GET base_url+path`` answers 200."""
    async with httpx.AsyncClient(base_url=base_url, timeout=1.0) as http:
        while True:
            try:
                if (await http.get(path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(POLL_SECONDS)


async def gateway_healthy(settings: StackSettings) -> None:
    """The gateway's ``/healthz`` answers 200."""
    await http_ok(settings.gateway_url, "/healthz")


async def prometheus_ready(settings: StackSettings) -> None:
    """Prometheus' ``/-/ready`` answers 200: it has loaded its configuration and rules."""
    await http_ok(settings.prometheus_url, "/-/ready")


async def alertmanager_ready(settings: StackSettings) -> None:
    """Alertmanager's ``/-/ready`` answers 200."""
    await http_ok(settings.alertmanager_url, "/-/ready")


def clusters_of(settings: StackSettings) -> list[group_pb2.Cluster]:
    """The clusters ``bay up`` registers: ``local``, and the simulated one if asked for, each with
    where its scheduler listens (the same addresses the gateway is given in ``BAY_SCHEDULERS``)."""
    schedulers = settings.schedulers
    out = [group_pb2.Cluster(name="local", backend="local", scheduler_address=schedulers["local"])]
    if settings.sim_cluster:
        out.append(
            group_pb2.Cluster(
                name=settings.sim_cluster,
                backend="mesos",
                address=settings.sim_master_address,
                scheduler_address=schedulers[settings.sim_cluster],
            )
        )
    return out


async def register_cluster(settings: StackSettings, token: str, cluster: group_pb2.Cluster) -> None:
    """Register a cluster; the registry makes a repeat a no-op (and records a moved scheduler).

    Retries while the registry is unavailable; any other refusal (a cluster of that name registered
    with another backend or address) is raised as its BayError for the supervisor to report.
    """
    async with RegistryClient(
        settings.registry_address, timeout=5.0, caller=Caller.bearer(token)
    ) as registry:
        while True:
            try:
                await registry.register_cluster(cluster)
                return
            except Unavailable:
                pass
            await asyncio.sleep(POLL_SECONDS)
