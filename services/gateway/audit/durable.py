"""The audit's durable pull consumer on the event stream.

The SQL cursor, not the consumer, is the truth about what has been written: the consumer is only
the server-side position to fetch from. So it is (re)created at ``cursor + 1`` whenever it is gone or
has handed out events the database does not have (the writer died before committing, or the
database was restored from an older backup); events it delivers again that the database already has
are skipped by the store.
"""

from __future__ import annotations

import logging

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

log = logging.getLogger("bay.audit")


class DurableConsumer:
    def __init__(
        self, js: JetStreamContext, stream: str, durable: str, *, batch_size: int, ack_wait: float = 30.0
    ) -> None:
        self.js = js
        self.stream = stream
        self.durable = durable
        self.batch_size = batch_size
        self.ack_wait = ack_wait
        self._sub: JetStreamContext.PullSubscription | None = None

    async def open(self, cursor: int) -> None:
        """Bind to the durable consumer, creating or re-creating it at ``cursor + 1`` if needed."""
        await self.close()
        stream = await self.js.stream_info(self.stream)
        if stream.state.last_seq < cursor:
            log.error(
                "stream %s ends at sequence %d but the audit has events up to %d: the stream was "
                "recreated; new events are written from sequence %d on",
                self.stream,
                stream.state.last_seq,
                cursor,
                cursor + 1,
            )
        try:
            info = await self.js.consumer_info(self.stream, self.durable)
        except nats.js.errors.NotFoundError:
            log.info("creating durable consumer %s at sequence %d", self.durable, cursor + 1)
            await self._create(cursor)
        else:
            if info.delivered.stream_seq > cursor:
                log.info(
                    "consumer %s handed out events up to %d but the audit has %d: restarting it at %d",
                    self.durable,
                    info.delivered.stream_seq,
                    cursor,
                    cursor + 1,
                )
                await self._recreate(cursor)
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def reset(self, cursor: int) -> None:
        """Start the consumer again at ``cursor + 1`` (events it had handed out come again)."""
        await self.close()
        await self._recreate(cursor)
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def fetch(self, timeout: float) -> list[Msg]:
        """Up to a batch of events; ``[]`` when none came within ``timeout``."""
        if self._sub is None:
            raise RuntimeError("the consumer is not open")
        try:
            return await self._sub.fetch(self.batch_size, timeout=timeout)
        except TimeoutError:  # nats.errors.TimeoutError is one too
            return []

    async def next_stored(self, sequence: int) -> int | None:
        """The first sequence >= ``sequence`` still in the stream (None: there is none)."""
        try:
            msg = await self.js.get_msg(self.stream, seq=sequence, subject=">", next=True)
        except nats.js.errors.NotFoundError:
            return None
        return int(msg.seq) if msg.seq is not None else None

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass  # the connection is gone, and the subscription with it

    async def _recreate(self, cursor: int) -> None:
        try:
            await self.js.delete_consumer(self.stream, self.durable)
        except nats.js.errors.NotFoundError:
            pass
        await self._create(cursor)

    async def _create(self, cursor: int) -> None:
        config = ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            description="Bay audit trail: every event into SQL",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=max(1000, 2 * self.batch_size),
        )
        if cursor:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = cursor + 1
        await self.js.add_consumer(self.stream, config)
