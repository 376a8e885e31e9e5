"""The deployer process: ``python -m services.deployer``."""

from __future__ import annotations

import asyncio
import logging
import time

from bay.v1 import deploy_pb2, deploy_pb2_grpc

from libs.auth import TokenStore, service_token
from libs.clients import Caller, DnsClient, RegistryClient
from libs.eventlog.jetstream import event_log_for, wait_for_stream
from libs.foldstatus import fold_status
from libs.grpcutil import make_server
from libs.metrics import PROCESS
from libs.natsconn import connect
from libs.runtime import run_service
from libs.telemetry import setup_telemetry
from services.deployer.adapters.dns import GrpcDns
from services.deployer.adapters.metrics import DeployerMetrics
from services.deployer.adapters.registry import GrpcRegistry
from services.deployer.adapters.samples import Samples
from services.deployer.bootstrap import bootstrap
from services.deployer.grpc_api import DeployerServicer
from services.deployer.settings import DeployerSettings

log = logging.getLogger("bay.deployer")

SERVICE_NAME = deploy_pb2.DESCRIPTOR.services_by_name["Deployer"].full_name


async def serve(settings: DeployerSettings, stop: asyncio.Event) -> None:
    setup_telemetry("bay-deployer")
    conn = await connect(settings.nats_url, name="bay-deployer", credentials=settings.nats_credentials())
    event_log = event_log_for(conn, settings)
    await wait_for_stream(event_log)
    tokens = TokenStore(settings.resolved_tokens_file(), anonymous_read=settings.anonymous_read)
    caller = Caller.bearer(service_token(settings.deployer_token_file, settings.data_dir, tokens, "deployer"))
    registry = RegistryClient(
        settings.registry_addr, timeout=settings.registry_timeout_seconds, caller=caller
    )
    dns = (
        GrpcDns(DnsClient(settings.dns_addr, timeout=2.0, caller=caller, configured_by="the deployer"))
        if settings.dns_addr
        else None
    )
    samples = Samples(time.time)
    subscriptions = await samples.subscribe(conn.client)
    deployer = await bootstrap(event_log, GrpcRegistry(registry), metrics=samples, dns=dns)
    metrics = DeployerMetrics(lambda: deployer.projection.state, PROCESS.registry)
    deployer.projection.state.deployment_observers.append(metrics.deployment_changed)  # live from here
    server, port = await make_server(
        settings.deployer_listen,
        [
            (
                deploy_pb2_grpc.add_DeployerServicer_to_server,
                DeployerServicer(deployer, tokens),
                SERVICE_NAME,
            ),
            fold_status("deployer", deployer.projection),
        ],
        nats=conn,
    )
    await server.start()
    checks = f"DNS at {settings.dns_addr}" if dns else "readiness only (no BAY_DNS_ADDR)"
    log.info(
        "deployer listening on %s (port %d); migrations check %s", settings.deployer_listen, port, checks
    )
    controller = asyncio.create_task(deployer.run(stop))
    await stop.wait()
    log.info("deployer stopping")
    await controller
    await server.stop(grace=2)
    for sub in subscriptions:
        await sub.unsubscribe()
    await deployer.projection.stop(snapshot=False)
    await registry.close()
    if dns is not None:
        await dns.client.close()
    await conn.close()


def main() -> None:
    run_service("deployer", DeployerSettings, serve)


if __name__ == "__main__":
    main()
