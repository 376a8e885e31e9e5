"""In-memory event log: the fake for unit tests of handlers and projections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Mapping

from bay.v1 import envelope_pb2

from libs.errors import Conflict
from libs.eventlog.port import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AppendResult,
    EventLog,
    Record,
    message_size,
    too_large,
)
from libs.events.subjects import matches as subject_matches


class MemoryEventLog(EventLog):
    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._max_message_bytes = max_message_bytes
        self._records: list[Record] = []
        self._last_by_subject: dict[str, int] = {}
        self._by_event_id: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._identity = f"memory {uuid.uuid4()}"

    async def stream_identity(self) -> str:
        return self._identity

    async def append(
        self,
        subject: str,
        envelope: envelope_pb2.Envelope,
        *,
        expected_last_seq: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AppendResult:
        hdrs = {"Nats-Msg-Id": envelope.event_id, **(headers or {})}  # as JetStream would send it
        if expected_last_seq is not None:
            hdrs["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
        size = message_size(envelope.SerializeToString(), hdrs)
        if size > self._max_message_bytes:
            raise too_large(subject, size, self._max_message_bytes)
        if envelope.event_id in self._by_event_id:
            return AppendResult(self._by_event_id[envelope.event_id], duplicate=True)
        last = self._last_by_subject.get(subject, 0)
        if expected_last_seq is not None and expected_last_seq != last:
            raise Conflict(f"{subject}: expected last sequence {expected_last_seq}, it is {last}")
        seq = len(self._records) + 1
        copy = envelope_pb2.Envelope()
        copy.CopyFrom(envelope)
        self._records.append(Record(seq, subject, copy, dict(headers or {})))
        self._last_by_subject[subject] = seq
        self._by_event_id[envelope.event_id] = seq
        async with self._changed:
            self._changed.notify_all()
        return AppendResult(seq)

    @property
    def max_message_bytes(self) -> int:
        return self._max_message_bytes

    async def read_batches(
        self, from_seq: int = 1, *, subject_filter: str | None = None, follow: bool = False
    ) -> AsyncGenerator[list[Record], None]:
        nxt = max(from_seq, 1)
        while True:
            batch = [
                rec
                for rec in self._records[nxt - 1 :]
                if subject_filter is None or subject_matches(subject_filter, rec.subject)
            ]
            nxt = len(self._records) + 1
            if batch:
                yield batch
            if not follow:
                return
            async with self._changed:
                await self._changed.wait_for(lambda n=nxt: n <= len(self._records))  # type: ignore[misc]

    async def last_sequence(self, subject_filter: str | None = None) -> int:
        if subject_filter is None:
            return len(self._records)
        for rec in reversed(self._records):
            if subject_matches(subject_filter, rec.subject):
                return rec.sequence
        return 0
