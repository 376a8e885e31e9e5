"""An event the registry cannot apply (a scale of a group that was never created, a type it does
not know) is skipped and counted: the registry keeps folding and serving, and starts again after it."""

from __future__ import annotations

from pathlib import Path

from bay.v1 import group_pb2, registry_pb2

from libs.eventlog import FileSnapshotStore
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from tests.integration.registry_harness import RunningRegistry, start_registry


async def poison(reg: RunningRegistry) -> int:
    ghost = make_envelope(
        to_pb(m.GroupScaled(5, 0, "forged")),
        aggregate_type="group",
        aggregate_id="ghost",
        aggregate_version=1,
        meta=EventMeta("admin"),
    )
    await reg.log.append(subjects.group("ghost"), ghost)
    unknown = make_envelope(
        to_pb(m.GroupDeleted(1)),
        aggregate_type="group",
        aggregate_id="other",
        aggregate_version=1,
        meta=EventMeta(),
    )
    unknown.type = "GroupTeleported"
    return (await reg.log.append(subjects.group("other"), unknown)).sequence


async def create(reg: RunningRegistry, name: str) -> None:
    spec = group_pb2.GroupSpec(name=name, cmd="run", cluster="local")
    await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md())


async def test_a_poisoned_log_is_skipped_live_and_on_restart(fresh_stream: str, tmp_path: Path) -> None:
    reg = await start_registry(fresh_stream, tmp_path)
    await reg.stub.RegisterCluster(
        registry_pb2.RegisterClusterRequest(cluster=group_pb2.Cluster(name="local", backend="local")),
        metadata=reg.md(),
    )
    last = await poison(reg)
    await reg.projection.wait_for(last, timeout=10)
    assert reg.projection.state.skipped == 2 and "ghost" not in reg.projection.state.groups
    await create(reg, "web")  # commands go on being served
    listed = await reg.stub.ListGroups(registry_pb2.ListGroupsRequest(), metadata=reg.md())
    assert [g.spec.name for g in listed.groups] == ["web"]
    await reg.stop()

    await FileSnapshotStore(tmp_path / "snapshots").delete("registry")
    again = await start_registry(fresh_stream, tmp_path)  # a full replay meets the same events
    try:
        assert again.projection.state.skipped == 2
        await create(again, "api")
        assert set(again.projection.state.groups) == {"web", "api"}
    finally:
        await again.stop()
