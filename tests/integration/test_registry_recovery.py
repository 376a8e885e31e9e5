"""Restart from snapshot, and a NATS outage: fail fast, nothing half-written, reconnect by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from bay.v1 import group_pb2, registry_pb2

from libs.eventlog import FileSnapshotStore
from tests.conftest import NatsProcess
from tests.integration.registry_harness import RunningRegistry, start_registry


async def populate(reg: RunningRegistry, groups: int, scales: int) -> None:
    await reg.stub.RegisterCluster(
        registry_pb2.RegisterClusterRequest(cluster=group_pb2.Cluster(name="local", backend="local")),
        metadata=reg.md(),
    )
    for i in range(groups):
        spec = group_pb2.GroupSpec(name=f"g{i}", cmd="run", cluster="local")
        await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md())
    for j in range(scales):
        req = registry_pb2.ScaleGroupRequest(name=f"g{j % groups}", instances=j + 2)
        await reg.stub.ScaleGroup(req, metadata=reg.md())
    await reg.stub.DeleteGroup(registry_pb2.DeleteGroupRequest(name="g0"), metadata=reg.md())


async def test_restart_from_snapshot_equals_full_replay(fresh_stream: str, tmp_path: Path) -> None:
    reg = await start_registry(fresh_stream, tmp_path, snapshot_every=7)
    await populate(reg, groups=5, scales=30)
    before = reg.projection.state
    last = reg.projection.sequence
    await reg.stop()
    assert await FileSnapshotStore(tmp_path / "snapshots").load("registry") is not None

    from_snapshot = await start_registry(fresh_stream, tmp_path)
    assert from_snapshot.projection.replayed < last  # it started from the snapshot
    assert from_snapshot.projection.state == before
    await from_snapshot.stop()

    await FileSnapshotStore(tmp_path / "snapshots").delete("registry")
    full = await start_registry(fresh_stream, tmp_path)
    assert full.projection.replayed == last
    assert full.projection.state == before
    got = await full.stub.GetGroup(registry_pb2.GetGroupRequest(name="g1"), metadata=full.md())
    assert got.spec.instances == 28  # g1 was last scaled at j=26, to 28
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await full.stub.GetGroup(registry_pb2.GetGroupRequest(name="g0"), metadata=full.md())
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    await full.stop()


async def test_nats_outage_fails_fast_then_recovers(
    fresh_stream: str, nats_server: NatsProcess, tmp_path: Path
) -> None:
    reg = await start_registry(fresh_stream, tmp_path)
    await populate(reg, groups=2, scales=0)
    seq_before = reg.projection.sequence
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    reg.conn.on_reconnect(on_reconnect)
    nats_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await reg.stub.ScaleGroup(
                registry_pb2.ScaleGroupRequest(name="g1", instances=9), metadata=reg.md()
            )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "nothing was written" in (info.value.details() or "") or "retry" in (
            info.value.details() or ""
        )
        assert time.monotonic() - started < 3.0
        # reads keep working from the folded state
        got = await reg.stub.GetGroup(registry_pb2.GetGroupRequest(name="g1"), metadata=reg.md())
        assert got.spec.instances == 1
    finally:
        nats_server.start()
    await asyncio.wait_for(reconnected.wait(), 15)
    reply = await reg.stub.ScaleGroup(
        registry_pb2.ScaleGroupRequest(name="g1", instances=9), metadata=reg.md()
    )
    assert reply.group.spec.instances == 9
    hist = await reg.stub.GroupHistory(registry_pb2.GroupHistoryRequest(name="g1"), metadata=reg.md())
    assert [e.envelope.type for e in hist.events] == ["GroupCreated", "GroupScaled"]  # nothing half-written
    assert reply.sequence == seq_before + 1
    await reg.stop()
