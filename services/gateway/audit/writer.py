"""The audit writer: every event of the stream into SQL, exactly once.

For each fetched batch: one transaction inserts the new rows and moves the cursor, it commits, and
only then are the messages acked. A crash between commit and ack makes JetStream deliver the batch
again; the store skips what is at or below its cursor (and the sequence primary key could not take a
second copy anyway), so nothing is doubled. A batch is only ever written right after the cursor
(see :mod:`services.gateway.audit.batch`): if the consumer skips ahead (a delivery lost on a
reconnect, a consumer recreated elsewhere), the writer asks the stream whether the skipped events
exist; if they do it restarts the consumer at the cursor, if not (deleted or expired) it moves past
the hole.

After each commit the new cursor is published on ``bay.audit.progress`` (plain NATS, ASCII), so tests
and operators can wait for "the audit has reached sequence N" instead of polling the database.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import nats.errors
from nats.aio.msg import Msg

from libs.errors import Unavailable
from libs.eventlog.port import Record
from libs.natsconn import NatsConnection
from libs.telemetry import consumer_span
from services.gateway.audit.batch import Delivery, decode, plan_batch
from services.gateway.audit.durable import DurableConsumer

log = logging.getLogger("bay.audit")

PROGRESS_SUBJECT = "bay.audit.progress"
MAX_SEQUENCE = 2**63 - 1  # what the BIGINT sequence column holds

T = TypeVar("T")


class AuditStore(abc.ABC):
    """Where the audit trail is kept (port). Synchronous: the writer calls it from a thread."""

    @abc.abstractmethod
    def cursor(self) -> int:
        """The highest stream sequence written (0: none)."""

    @abc.abstractmethod
    def write(self, batch: Sequence[Record]) -> int:
        """Store the events above the cursor and move the cursor to the highest; return the cursor.

        One transaction: on any error neither a row nor the cursor has changed. Events at or below
        the cursor are skipped, so writing a batch again changes nothing.
        """


class MemoryAuditStore(AuditStore):
    """The in-memory fake, held to the same contract as the SQL store."""

    def __init__(self) -> None:
        self.rows: dict[int, Record] = {}
        self._cursor = 0

    def cursor(self) -> int:
        return self._cursor

    def write(self, batch: Sequence[Record]) -> int:
        fresh = sorted((r for r in batch if r.sequence > self._cursor), key=lambda r: r.sequence)
        if not fresh:
            return self._cursor
        if fresh[-1].sequence > MAX_SEQUENCE:
            raise OverflowError(f"sequence {fresh[-1].sequence} does not fit the sequence column")
        seen = {r.envelope.event_id for r in self.rows.values()}
        for rec in fresh:
            if rec.sequence not in self.rows and rec.envelope.event_id not in seen:
                self.rows[rec.sequence] = rec
                seen.add(rec.envelope.event_id)
        self._cursor = fresh[-1].sequence
        return self._cursor


class AuditWriter:
    def __init__(
        self,
        conn: NatsConnection,
        store: AuditStore,
        *,
        stream: str = "BAY_EVENTS",
        durable: str = "bay-audit",
        batch_size: int = 500,
        fetch_timeout: float = 5.0,
        retry_seconds: float = 1.0,
        lag_log_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.store = store
        self.consumer = DurableConsumer(conn.client.jetstream(), stream, durable, batch_size=batch_size)
        self.fetch_timeout = fetch_timeout
        self.retry_seconds = retry_seconds
        self.lag_log_seconds = lag_log_seconds
        self.clock = clock
        self.cursor = 0
        self._next_lag_log = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Write events until ``stop`` is set; survives NATS and database outages by retrying."""
        cursor = await self._retrying(
            "reading the audit cursor", lambda: asyncio.to_thread(self.store.cursor), stop
        )
        if cursor is None:
            return
        self.cursor = cursor
        log.info("audit writer starting after sequence %d", cursor)
        opened = False
        try:
            while not stop.is_set():
                if not opened:
                    opened = (
                        await self._retrying("opening the durable consumer", self._open, stop) is not None
                    )
                    continue
                try:
                    msgs = await self._until_stopped(self.consumer.fetch(self.fetch_timeout), stop)
                except Exception as exc:  # the consumer was deleted, NATS is down...: bind it again
                    level = logging.WARNING if self.conn.connected else logging.DEBUG
                    log.log(level, "fetching events failed (%r); opening the consumer again", exc)
                    opened = False
                    await self._pause(stop)
                    continue
                if msgs:
                    opened = await self._handle([decode(m) for m in msgs], stop)
        finally:
            await self.consumer.close()
            log.info("audit writer stopped at sequence %d", self.cursor)

    async def _open(self) -> bool:
        await self.consumer.open(self.cursor)
        await self._publish_progress()
        return True

    async def _handle(self, deliveries: list[Delivery], stop: asyncio.Event) -> bool:
        """Write and ack one delivery; False when the consumer must be opened again."""
        remaining, expected = deliveries, self.cursor + 1
        while remaining:
            plan = plan_batch(expected, remaining, lambda d: d.record.sequence)
            if plan.fresh:
                first, last = plan.fresh[0].record.sequence, plan.fresh[-1].record.sequence
                cursor = await self._retrying(
                    f"writing events {first}..{last}", functools.partial(self._store, plan.fresh), stop
                )
                if cursor is None:  # stopped before it could be stored: leave it unacked
                    return True
                self.cursor = cursor
            for d in plan.stale + plan.fresh:  # only now that they are committed
                await self._ack(d.msg)
            if plan.fresh:
                await self._publish_progress()
                self._log_lag(plan.fresh[-1].msg)
            if not plan.held:
                break
            gap_end = plan.held[0].record.sequence
            try:
                nxt = await self.consumer.next_stored(plan.next_expected)
            except Exception as exc:
                log.warning("cannot look up sequence %d in the stream (%s)", plan.next_expected, exc)
                return False
            if nxt is not None and nxt < gap_end:
                log.warning(
                    "the consumer skipped from %d to %d but %d is in the stream: re-reading from %d",
                    plan.next_expected,
                    gap_end,
                    nxt,
                    self.cursor + 1,
                )
                return await self._retrying("restarting the consumer", self._reset, stop) is not None
            log.warning(
                "events %d..%d are not in the stream (deleted or expired)", plan.next_expected, gap_end - 1
            )
            remaining, expected = plan.held, gap_end
        return True

    async def _store(self, fresh: list[Delivery]) -> int:
        # one span per event, parented on the trace its headers carry, around the real write
        with contextlib.ExitStack() as spans:
            for d in fresh:
                spans.enter_context(
                    consumer_span(
                        "audit.write",
                        d.record.headers,
                        **{
                            "messaging.destination.name": d.record.subject,
                            "bay.event.type": d.record.envelope.type,
                            "bay.event.sequence": str(d.record.sequence),
                        },
                    )
                )
            return await asyncio.to_thread(self.store.write, [d.record for d in fresh])

    async def _reset(self) -> bool:
        await self.consumer.reset(self.cursor)
        return True

    async def _retrying(self, what: str, op: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T | None:
        """``op()`` until it succeeds (its result) or ``stop`` is set (None)."""
        while not stop.is_set():
            try:
                return await op()
            except Unavailable as exc:
                log.warning("%s: %s; retrying in %.1fs", what, exc.message, self.retry_seconds)
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                # while NATS is away the client reconnects by itself (and says so): retry quietly
                level = logging.WARNING if self.conn.connected else logging.DEBUG
                log.log(level, "%s: %r; retrying in %.1fs", what, exc, self.retry_seconds)
            except Exception:
                log.exception("%s failed; retrying in %.1fs", what, self.retry_seconds)
            await self._pause(stop)
        return None

    async def _pause(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.retry_seconds)

    async def _until_stopped(self, work: Awaitable[list[Msg]], stop: asyncio.Event) -> list[Msg]:
        task = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return []
        return task.result()

    async def _ack(self, msg: Msg) -> None:
        try:
            await msg.ack()
        except Exception as exc:  # it comes again and is skipped then
            log.debug("ack of %s failed: %s", msg.reply, exc)

    async def _publish_progress(self) -> None:
        try:
            await self.conn.client.publish(PROGRESS_SUBJECT, str(self.cursor).encode())
        except Exception as exc:  # progress is advisory; the cursor is in the database
            log.debug("cannot publish audit progress: %s", exc)

    def _log_lag(self, last: Msg) -> None:
        now = self.clock()
        if now < self._next_lag_log:
            return
        self._next_lag_log = now + self.lag_log_seconds
        log.info("audit at sequence %d, %d events behind", self.cursor, last.metadata.num_pending)
