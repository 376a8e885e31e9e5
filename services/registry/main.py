"""The registry process: ``python -m services.registry``."""

from __future__ import annotations

import asyncio
import logging

from bay.v1 import registry_pb2, registry_pb2_grpc

from libs.auth import TokenStore
from libs.eventlog import FileSnapshotStore, Projection
from libs.eventlog.jetstream import JetStreamEventLog, event_log_for, wait_for_stream
from libs.foldstatus import fold_status
from libs.grpcutil import make_server
from libs.natsconn import connect
from libs.runtime import run_service
from libs.telemetry import setup_telemetry
from services.registry.adapters.codec import decode_snapshot, encode_snapshot
from services.registry.domain.registry import RegistryState
from services.registry.grpc_api import RegistryServicer
from services.registry.handlers import Registry, fold
from services.registry.settings import RegistrySettings

log = logging.getLogger("bay.registry")

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["Registry"].full_name


def make_projection(log_: JetStreamEventLog, settings: RegistrySettings) -> Projection[RegistryState]:
    return Projection(
        name="registry",
        log=log_,
        initial=RegistryState,
        apply=fold,
        subject_filter=None,
        snapshots=FileSnapshotStore(settings.data_dir / "snapshots"),
        encode=encode_snapshot,
        decode=decode_snapshot,
        snapshot_every=settings.snapshot_every,
    )


async def serve(settings: RegistrySettings, stop: asyncio.Event) -> None:
    setup_telemetry("bay-registry")
    conn = await connect(settings.nats_url, name="bay-registry", credentials=settings.nats_credentials())
    event_log = event_log_for(conn, settings)
    await wait_for_stream(event_log)
    projection = make_projection(event_log, settings)
    await projection.start()
    registry = Registry(event_log, projection)
    tokens = TokenStore(settings.resolved_tokens_file(), anonymous_read=settings.anonymous_read)
    server, port = await make_server(
        settings.registry_listen,
        [
            (
                registry_pb2_grpc.add_RegistryServicer_to_server,
                RegistryServicer(registry, tokens),
                SERVICE_NAME,
            ),
            fold_status("registry", projection),
        ],
        nats=conn,
    )
    await server.start()
    log.info(
        "registry listening on %s (port %d); events up to %d bytes (NATS max_payload, headers included)",
        settings.registry_listen, port, event_log.max_message_bytes,
    )  # fmt: skip
    await stop.wait()
    log.info("registry stopping")
    await server.stop(grace=2)
    await projection.stop(snapshot=True)
    await conn.close()


def main() -> None:
    run_service("registry", RegistrySettings, serve)


if __name__ == "__main__":
    main()
