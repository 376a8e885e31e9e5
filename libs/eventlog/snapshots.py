"""Snapshots: a projection's folded state as bytes, with the stream sequence it stands at.

They only shorten a restart: a missing, unreadable or deleted snapshot means a replay from the
start, with the same result. A snapshot names the stream it was taken from (the log's
``stream_identity``: its name and creation time), so one taken from a stream since deleted and
created again is refused by the projection (:mod:`libs.eventlog.projection`) instead of restoring a
sequence the new stream has never had.

The file: ``BAYSNAP2``, the sequence (8 bytes, big-endian), the stream identity's length (2 bytes)
and its UTF-8 text, then the state. ``BAYSNAP1`` files (no stream identity) are refused as unknown.
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

_MAGIC = b"BAYSNAP2"
_OLD_MAGIC = b"BAYSNAP1"
_HEAD = struct.Struct(">QH")  # sequence, length of the stream identity


@dataclass(frozen=True)
class Snapshot:
    sequence: int
    data: bytes
    stream: str = ""  # the identity of the stream it was taken from ("" : unknown)


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
        if raw[:8] == _OLD_MAGIC:
            log.warning(
                "snapshot %s is of an older format (no stream identity); replaying from the start", name
            )
            return None
        start = 8 + _HEAD.size
        if len(raw) < start or raw[:8] != _MAGIC:
            log.warning("snapshot %s is unreadable; replaying from the start", name)
            return None
        seq, size = _HEAD.unpack_from(raw, 8)
        try:
            stream = raw[start : start + size].decode()
        except UnicodeDecodeError:
            log.warning("snapshot %s is unreadable; replaying from the start", name)
            return None
        return Snapshot(seq, raw[start + size :], stream)

    async def save(self, name: str, snapshot: Snapshot) -> None:
        await asyncio.to_thread(self._save, name, snapshot)

    def _save(self, name: str, snapshot: Snapshot) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._path(name).with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            stream = snapshot.stream.encode()
            fh.write(_MAGIC + _HEAD.pack(snapshot.sequence, len(stream)) + stream + snapshot.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(name))

    async def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
