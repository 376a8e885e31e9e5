"""One contract for every SnapshotStore adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.eventlog import FileSnapshotStore, MemorySnapshotStore, Snapshot, SnapshotStore


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SnapshotStore:
    return MemorySnapshotStore() if request.param == "memory" else FileSnapshotStore(tmp_path / "snaps")


async def test_missing_is_none(store: SnapshotStore) -> None:
    assert await store.load("registry") is None


async def test_save_load_replace_delete(store: SnapshotStore) -> None:
    await store.save("registry", Snapshot(10, b"state-10"))
    assert await store.load("registry") == Snapshot(10, b"state-10")
    await store.save("registry", Snapshot(20, b"state-20", "BAY_EVENTS 2026-12-01T10:00:00+00:00"))
    assert await store.load("registry") == Snapshot(20, b"state-20", "BAY_EVENTS 2026-12-01T10:00:00+00:00")
    assert await store.load("other") is None
    await store.delete("registry")
    assert await store.load("registry") is None


async def test_corrupt_file_reads_as_missing(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    (tmp_path / "registry.snap").write_bytes(b"garbage")
    assert await store.load("registry") is None
