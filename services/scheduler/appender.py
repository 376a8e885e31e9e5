"""Appending the scheduler's events: many in flight at once, in order per subject.

One scheduler owns its cluster's task subjects, so appends carry no expected-sequence check; what
matters is throughput (thousands of launches and status changes a second) and per-task order
(RUNNING is never stored before STARTING). Each append waits for the previous one on the same subject,
at most ``max_in_flight`` are outstanding, and an append that found the log unreachable is retried
with the same event id (JetStream drops a copy that did get stored) until ``retry_seconds`` pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bay.v1 import envelope_pb2

from libs.errors import Unavailable
from libs.eventlog.port import EventLog

log = logging.getLogger("bay.scheduler.appender")


class Appender:
    def __init__(self, event_log: EventLog, *, max_in_flight: int = 512, retry_seconds: float = 10.0) -> None:
        self.log = event_log
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tails: dict[str, asyncio.Future[None]] = {}
        self.retry_seconds = retry_seconds

    async def append(self, subject: str, envelope: envelope_pb2.Envelope) -> int:
        """Store one event after the subject's previous ones; its stream sequence."""
        loop = asyncio.get_running_loop()
        prev = self._tails.get(subject)
        mine: asyncio.Future[None] = loop.create_future()
        self._tails[subject] = mine
        try:
            if prev is not None:
                await asyncio.wait({prev})  # order only: the previous one's failure is its caller's
            async with self._slots:
                return await self._store(subject, envelope)
        finally:
            mine.set_result(None)
            if self._tails.get(subject) is mine:
                del self._tails[subject]

    async def append_all(self, items: Sequence[tuple[str, envelope_pb2.Envelope]]) -> list[int]:
        """Store several (in order per subject, concurrently otherwise); their sequences in order."""
        if not items:
            return []
        return list(await asyncio.gather(*(self.append(s, e) for s, e in items)))

    async def _store(self, subject: str, envelope: envelope_pb2.Envelope) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                return (await self.log.append(subject, envelope)).sequence
            except Unavailable as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning("append to %s failed (%s); retrying", subject, exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
