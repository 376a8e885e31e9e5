"""Snapshots: a projection's folded state as bytes, with the stream sequence it stands at.

They only shorten a restart: a missing, unreadable or deleted snapshot means a replay from the
start, with the same result.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bay.snapshots")

_MAGIC = b"BAYSNAP1"


@dataclass(frozen=True)
class Snapshot:
    sequence: int
    data: bytes


class SnapshotStore(abc.ABC):
    @abc.abstractmethod
    async def load(self, name: str) -> Snapshot | None: ...

    @abc.abstractmethod
    async def save(self, name: str, snapshot: Snapshot) -> None: ...

    @abc.abstractmethod
    async def delete(self, name: str) -> None: ...


class MemorySnapshotStore(SnapshotStore):
    def __init__(self) -> None:
        self.items: dict[str, Snapshot] = {}

    async def load(self, name: str) -> Snapshot | None:
        return self.items.get(name)

    async def save(self, name: str, snapshot: Snapshot) -> None:
        self.items[name] = snapshot

    async def delete(self, name: str) -> None:
        self.items.pop(name, None)


class FileSnapshotStore(SnapshotStore):
    """One file per projection, written to a temporary name and renamed (never half-written)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.snap"

    async def load(self, name: str) -> Snapshot | None:
        return await asyncio.to_thread(self._load, name)

    def _load(self, name: str) -> Snapshot | None:
        try:
            raw = self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) < 16 or raw[:8] != _MAGIC:
            log.warning("snapshot %s is unreadable; replaying from the start", name)
            return None
        (seq,) = struct.unpack(">Q", raw[8:16])
        return Snapshot(seq, raw[16:])

    async def save(self, name: str, snapshot: Snapshot) -> None:
        await asyncio.to_thread(self._save, name, snapshot)

    def _save(self, name: str, snapshot: Snapshot) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._path(name).with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(_MAGIC + struct.pack(">Q", snapshot.sequence) + snapshot.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(name))

    async def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
