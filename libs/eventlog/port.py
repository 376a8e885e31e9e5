"""The event log port."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from bay.v1 import envelope_pb2

from libs.errors import BayError, TooLarge
from libs.events import subjects as event_subjects

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})

#: nats-server's default max_payload
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


def message_size(payload: bytes, headers: Mapping[str, str]) -> int:
    """The bytes a message takes against the server's ``max_payload``: nats-server counts the
    header block (``NATS/1.0``, one ``Key: Value`` line each, a blank line) with the payload;
    nats-py's own check counts the payload alone."""
    block = len(b"NATS/1.0\r\n\r\n")
    for key, value in headers.items():
        block += len(key.strip().encode()) + len(value.strip().encode()) + 4  # ": " and CRLF
    return block + len(payload)


def too_large(subject: str, size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the event for {subject} would be {size} bytes with its headers; one NATS message may "
        f"be at most {limit} bytes (the server's max_payload); nothing was written"
    )


@dataclass(frozen=True)
class StreamSettings:
    name: str = "BAY_EVENTS"
    subjects: tuple[str, ...] = (event_subjects.ALL,)
    replicas: int = 1
    duplicate_window_seconds: float = 120.0


@dataclass(frozen=True)
class AppendResult:
    sequence: int
    duplicate: bool = False  # the event id had been appended before (a retried append)


class Record(NamedTuple):
    """One event as read back: its stream sequence, subject, envelope and NATS headers.

    A NamedTuple rather than a frozen dataclass: one is built per replayed event, and a tuple
    is several times cheaper to construct."""

    sequence: int
    subject: str
    envelope: envelope_pb2.Envelope
    headers: Mapping[str, str] = _NO_HEADERS


class EventLog(abc.ABC):
    """Append-only, totally ordered, per-subject optimistic concurrency.

    ``append`` raises :class:`libs.errors.Conflict` when ``expected_last_seq`` is not the subject's
    last sequence (0 = the subject must be empty), and :class:`libs.errors.Unavailable` when the
    log cannot be reached; on Unavailable the event may or may not be stored, and a retry with the
    same event id is safe. An event larger than :attr:`max_message_bytes` with its headers is
    :class:`libs.errors.TooLarge`, and nothing is sent.
    """

    @property
    def max_message_bytes(self) -> int:
        """The largest event, headers included, the log takes."""
        return DEFAULT_MAX_MESSAGE_BYTES

    @abc.abstractmethod
    async def append(
        self,
        subject: str,
        envelope: envelope_pb2.Envelope,
        *,
        expected_last_seq: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AppendResult: ...

    async def append_batch(
        self,
        items: Sequence[tuple[str, envelope_pb2.Envelope]],
        headers: Sequence[Mapping[str, str] | None] | None = None,
    ) -> list[AppendResult | BayError]:
        """Append many events without concurrency checks, in order; each one's result or error (an
        error means that event may or may not be stored: retry it with the same event id). For a
        single writer of its subjects (a cluster's scheduler) that needs throughput. ``headers``,
        when given, holds each event's own message headers (its trace context)."""
        out: list[AppendResult | BayError] = []
        for i, (subject, envelope) in enumerate(items):
            try:
                out.append(await self.append(subject, envelope, headers=headers[i] if headers else None))
            except BayError as exc:
                out.append(exc)
        return out

    @abc.abstractmethod
    def read_batches(
        self, from_seq: int = 1, *, subject_filter: str | None = None, follow: bool = False
    ) -> AsyncGenerator[list[Record], None]:
        """Events with sequence >= from_seq in order, in batches as they arrive; with follow, then
        new ones as they come. Batches spare a replay one async hop per event."""

    async def read(
        self, from_seq: int = 1, *, subject_filter: str | None = None, follow: bool = False
    ) -> AsyncGenerator[Record, None]:
        """Events one by one (see :meth:`read_batches`)."""
        async for batch in self.read_batches(from_seq, subject_filter=subject_filter, follow=follow):
            for rec in batch:
                yield rec

    async def read_subjects(
        self, subject_filters: Sequence[str], *, until_seq: int | None = None
    ) -> AsyncGenerator[list[Record], None]:
        """The stored events of any of ``subject_filters`` (NATS wildcards), in order, up to
        ``until_seq`` (None: the end as of now). For a reader of a few aggregates' whole history (the
        time travel of one group): an adapter that can, filters on the server. This fallback reads
        everything and filters here."""
        async for batch in self.read_batches(1):
            kept = [
                rec
                for rec in batch
                if (until_seq is None or rec.sequence <= until_seq)
                and any(event_subjects.matches(f, rec.subject) for f in subject_filters)
            ]
            if kept:
                yield kept
            if until_seq is not None and batch[-1].sequence >= until_seq:
                return

    @abc.abstractmethod
    async def last_sequence(self, subject_filter: str | None = None) -> int:
        """The last stream sequence (of the filter's subjects, when given); 0 when empty."""

    async def stream_identity(self) -> str:
        """What tells this stream from another of the same name (one deleted and created again), for
        snapshots to name where they were taken; "" when the log cannot tell."""
        return ""

    async def close(self) -> None:
        return None
