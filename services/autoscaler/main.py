"""The autoscaler process: ``python -m services.autoscaler``."""

from __future__ import annotations

import asyncio
import logging

from bay.v1 import autoscale_pb2, autoscale_pb2_grpc

from libs.auth import TokenStore, service_token
from libs.clients import Caller, RegistryClient
from libs.eventlog.jetstream import event_log_for, wait_for_stream
from libs.foldstatus import fold_status
from libs.grpcutil import make_server
from libs.metrics import PROCESS
from libs.natsconn import connect
from libs.runtime import run_service
from libs.samples.pushed import PushedMetrics
from libs.samples.usage import UsageWindow
from libs.telemetry import setup_telemetry
from services.autoscaler.adapters.metrics import AutoscalerMetrics
from services.autoscaler.adapters.observe import Observer
from services.autoscaler.adapters.registry import GrpcRegistry
from services.autoscaler.adapters.wakers import StreamWakes
from services.autoscaler.bootstrap import bootstrap
from services.autoscaler.grpc_api import AutoscalerServicer
from services.autoscaler.settings import AutoscalerSettings

log = logging.getLogger("bay.autoscaler")

SERVICE_NAME = autoscale_pb2.DESCRIPTOR.services_by_name["Autoscaler"].full_name


async def serve(settings: AutoscalerSettings, stop: asyncio.Event) -> None:
    setup_telemetry("bay-autoscaler")
    conn = await connect(settings.nats_url, name="bay-autoscaler", credentials=settings.nats_credentials())
    event_log = event_log_for(conn, settings)
    await wait_for_stream(event_log)
    tokens = TokenStore(settings.resolved_tokens_file(), anonymous_read=settings.anonymous_read)
    caller = Caller.bearer(
        service_token(settings.autoscaler_token_file, settings.data_dir, tokens, "autoscaler")
    )
    registry = RegistryClient(
        settings.registry_addr, timeout=settings.registry_timeout_seconds, caller=caller
    )
    usage, pushed = UsageWindow(), PushedMetrics()
    subscriptions = [await usage.subscribe(conn.client), await pushed.subscribe(conn.client)]
    observer = Observer(
        usage, pushed, js=conn.client.jetstream(), usage_seconds=settings.autoscaler_usage_seconds
    )
    autoscaler = await bootstrap(
        event_log,
        GrpcRegistry(registry),
        observer,
        tick_seconds=settings.autoscaler_tick_seconds,
        snapshot_seconds=settings.autoscaler_snapshot_seconds,
        wakes=StreamWakes(conn.client) if settings.autoscaler_backlog_wake else None,
    )
    metrics = AutoscalerMetrics(autoscaler, PROCESS.registry)
    autoscaler.view.decision_observers.append(metrics.decided)  # live from here: no replay counted
    server, port = await make_server(
        settings.autoscaler_listen,
        [
            (
                autoscale_pb2_grpc.add_AutoscalerServicer_to_server,
                AutoscalerServicer(autoscaler, tokens),
                SERVICE_NAME,
            ),
            fold_status("autoscaler", autoscaler.projection),
        ],
        nats=conn,
    )
    await server.start()
    log.info("autoscaler listening on %s (port %d)", settings.autoscaler_listen, port)
    loop = asyncio.create_task(autoscaler.run(stop))
    await stop.wait()
    log.info("autoscaler stopping")
    await loop
    await server.stop(grace=2)
    for sub in subscriptions:
        await sub.unsubscribe()
    await autoscaler.projection.stop(snapshot=False)
    await observer.aclose()
    await registry.close()
    await conn.close()


def main() -> None:
    run_service("autoscaler", AutoscalerSettings, serve)


if __name__ == "__main__":
    main()
