"""A snapshot names the stream it was taken from: after the stream is deleted and created again, a
restarted registry discards its snapshot with a warning and replays the new stream (before, it
restored a sequence the new stream never had and answered 409 to every group command)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from bay.v1 import group_pb2, registry_pb2

from libs.eventlog import FileSnapshotStore
from services.registry.adapters.codec import encode_snapshot
from tests.conftest import NatsProcess, reset_stream
from tests.integration.registry_harness import RunningRegistry, start_registry

LOCAL = group_pb2.Cluster(name="local", backend="local")


async def make_groups(reg: RunningRegistry, *names: str) -> None:
    md = reg.md()
    await reg.stub.RegisterCluster(registry_pb2.RegisterClusterRequest(cluster=LOCAL), metadata=md)
    for name in names:
        spec = group_pb2.GroupSpec(name=name, cmd="sleep 1000", cluster="local")
        await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=md)
        await reg.stub.ScaleGroup(registry_pb2.ScaleGroupRequest(name=name, instances=3), metadata=md)


async def test_a_snapshot_of_a_deleted_stream_is_discarded(
    fresh_stream: str, nats_server: NatsProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        await make_groups(reg, "web", "api", "feed")
        await reset_stream(nats_server)  # under the running registry
        await reg.projection.snapshot_now()  # as its stop would: the state of the stream it knew
    finally:
        await reg.stop()
    snap = await FileSnapshotStore(tmp_path / "snapshots").load("registry")
    assert snap is not None and snap.sequence == 7

    reg = await start_registry(fresh_stream, tmp_path)
    try:
        assert reg.projection.sequence == 0  # the new stream's, not the snapshot's 7
        await make_groups(reg, "web")  # was ABORTED: "changed since it was read"
        assert set(reg.projection.state.groups) == {"web"}  # not the old stream's three
        assert "taken from stream" in caplog.text and "discarded" in caplog.text
        got = await reg.stub.GetGroup(registry_pb2.GetGroupRequest(name="web"), metadata=reg.md())
        assert got.spec.instances == 3 and got.aggregate_version == 2
    finally:
        await reg.stop()

    # and a snapshot of this stream is still used
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        await reg.projection.snapshot_now()
    finally:
        await reg.stop()
    caplog.clear()
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        assert reg.projection.replayed == 0 and "discarded" not in caplog.text
        assert set(reg.projection.state.groups) == {"web"}
    finally:
        await reg.stop()


async def test_a_snapshot_of_the_older_format_is_discarded(
    fresh_stream: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        await make_groups(reg, "web")
        state, seq = reg.projection.state, reg.projection.sequence
        # the format before stream identities: magic, sequence, state
        old = b"BAYSNAP1" + struct.pack(">Q", seq) + encode_snapshot(state, seq)
    finally:
        await reg.stop()
    (tmp_path / "snapshots").mkdir(exist_ok=True)
    (tmp_path / "snapshots" / "registry.snap").write_bytes(old)

    reg = await start_registry(fresh_stream, tmp_path)
    try:
        assert "older format" in caplog.text
        assert reg.projection.replayed == seq  # replayed, not restored
        assert reg.projection.state == state
    finally:
        await reg.stop()
