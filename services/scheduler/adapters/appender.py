"""Appending the scheduler's events: thousands a second, each caller told when its event is stored.

One scheduler owns its cluster's task subjects, so appends carry no expected-sequence check; what
matters is throughput (a scale-up stores a launch and two status changes per task). Appends that
arrive while a batch is in flight are gathered into the next batch, which the event log publishes in
one go (``EventLog.append_batch``: in order on one connection, acknowledgements awaited together).

Per-subject order: JetStream stores a connection's messages in the order they were published, and
every caller awaits its event before it appends the next event of the same task (a status is stored
before the backend is acknowledged, which is what lets the next one come). An event the log could
not store is retried with the same event id (a copy that did get stored is dropped by JetStream)
until ``retry_seconds`` pass; its caller waits meanwhile, so nothing later of that task overtakes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from bay.v1 import envelope_pb2

from libs.errors import BayError, Unavailable
from libs.eventlog.port import AppendResult, EventLog

log = logging.getLogger("bay.scheduler.appender")

_Headers = Mapping[str, str] | None
_Item = tuple[str, envelope_pb2.Envelope, _Headers, "asyncio.Future[int]"]


class Appender:
    def __init__(self, event_log: EventLog, *, max_batch: int = 2000, retry_seconds: float = 10.0) -> None:
        self.log = event_log
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds
        self._queue: list[_Item] = []
        self._running: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()

    async def append(self, subject: str, envelope: envelope_pb2.Envelope, headers: _Headers = None) -> int:
        """Store one event (with its own message headers, e.g. its trace context); its sequence."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((subject, envelope, headers, fut))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain(), name="scheduler-appender")
        return await fut

    async def append_all(self, items: Sequence[tuple[str, envelope_pb2.Envelope, _Headers]]) -> list[int]:
        """Store several (in this order); their sequences in order."""
        if not items:
            return []
        return list(await asyncio.gather(*(self.append(s, e, h) for s, e, h in items)))

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            live = [item for item in batch if not item[3].done()]  # a cancelled caller: nothing to do
            if not live:
                continue
            try:
                results = await self.log.append_batch(
                    [(s, e) for s, e, _, _ in live], [h for _, _, h, _ in live]
                )
            except Exception as exc:  # a broken batch fails its events one by one, below
                results = [Unavailable(f"batch append failed: {exc}")] * len(live)
            for (subject, envelope, headers, fut), result in zip(live, results, strict=True):
                if fut.done():
                    continue
                if isinstance(result, AppendResult):
                    fut.set_result(result.sequence)
                else:
                    retry = asyncio.create_task(self._retry(subject, envelope, headers, fut, result))
                    self._retries.add(retry)
                    retry.add_done_callback(self._retries.discard)

    async def _retry(
        self,
        subject: str,
        envelope: envelope_pb2.Envelope,
        headers: _Headers,
        fut: asyncio.Future[int],
        error: BayError,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        delay = 0.05
        while not fut.done():
            if loop.time() + delay > deadline:
                fut.set_exception(error)
                return
            log.warning("append to %s failed (%s); retrying", subject, error.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            try:
                fut.set_result((await self.log.append(subject, envelope, headers=headers)).sequence)
            except BayError as exc:
                error = exc
