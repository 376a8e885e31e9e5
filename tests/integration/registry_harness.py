"""An in-process registry on a real nats-server and a real gRPC port, for integration tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import grpc
from bay.v1 import registry_pb2_grpc

from libs.auth import TokenStore
from libs.eventlog import FileSnapshotStore, Projection, StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog, wait_for_stream
from libs.foldstatus import fold_status
from libs.grpcutil import channel, make_server
from libs.natsconn import NatsConnection, connect
from services.registry.adapters.codec import decode_snapshot, encode_snapshot
from services.registry.domain.registry import RegistryState
from services.registry.grpc_api import RegistryServicer
from services.registry.handlers import Registry, fold
from services.registry.main import SERVICE_NAME
from tests import natsauth


@dataclass
class RunningRegistry:
    conn: NatsConnection
    log: JetStreamEventLog
    projection: Projection[RegistryState]
    registry: Registry
    server: grpc.aio.Server
    port: int
    channel: grpc.aio.Channel
    stub: registry_pb2_grpc.RegistryStub
    token: str
    viewer_token: str

    def md(self, token: str | None = None) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token or self.token}")]

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(grace=0)
        await self.projection.stop(snapshot=False)
        await self.conn.close()


async def start_registry(nats_url: str, data_dir: Path, *, snapshot_every: int = 50_000) -> RunningRegistry:
    conn = await connect(
        nats_url, name="test-registry", wait_seconds=5, credentials=natsauth.credentials("registry")
    )
    log = JetStreamEventLog(conn, StreamSettings(), timeout=2.0)
    await wait_for_stream(log, 5)  # made by the set-up (the fresh_stream fixture)
    projection = Projection(
        name="registry",
        log=log,
        initial=RegistryState,
        apply=fold,
        snapshots=FileSnapshotStore(data_dir / "snapshots"),
        encode=encode_snapshot,
        decode=decode_snapshot,
        snapshot_every=snapshot_every,
    )
    await projection.start()
    registry = Registry(log, projection)
    tokens = TokenStore(data_dir / "tokens.json")
    token = tokens.create("ops", "operator")
    viewer = tokens.create("watcher", "viewer")
    server, port = await make_server(
        "127.0.0.1:0",
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
    ch = channel(f"127.0.0.1:{port}")
    await asyncio.wait_for(ch.channel_ready(), 5)
    return RunningRegistry(
        conn, log, projection, registry, server, port, ch, registry_pb2_grpc.RegistryStub(ch), token, viewer
    )
