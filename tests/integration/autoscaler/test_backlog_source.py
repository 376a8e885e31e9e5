"""A JetStream consumer's backlog on the session's real nats-server, and the subjects a wake-up from
zero watches."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from services.autoscaler.sources.backlog import (
    MISSING_CONSUMER,
    MISSING_STREAM,
    consumer_subjects,
    read_backlog,
)

DEADLINE = 10.0


class Queue:
    def __init__(self, js: JetStreamContext, tag: str) -> None:
        self.js = js
        self.stream = f"AS_WORK_{tag}"
        self.subject = f"as.work.{tag}"
        self.durable = "workers"


@pytest_asyncio.fixture
async def queue(nc: Client) -> AsyncIterator[Queue]:
    """A work stream of its own (``as.work.<tag>.>``), with a durable pull consumer of one kind."""
    js = nc.jetstream()
    q = Queue(js, uuid.uuid4().hex[:8])
    await js.add_stream(name=q.stream, subjects=[f"{q.subject}.>"])
    await js.add_consumer(
        q.stream,
        ConsumerConfig(
            durable_name=q.durable, ack_policy=AckPolicy.EXPLICIT, filter_subject=f"{q.subject}.jobs"
        ),
    )
    try:
        yield q
    finally:
        await js.delete_stream(q.stream)


async def test_backlog_counts_pending_and_unacked(queue: Queue) -> None:
    js = queue.js
    assert (await read_backlog(js, queue.stream, queue.durable)).pending == 0
    for i in range(7):
        await js.publish(f"{queue.subject}.jobs", b"job %d" % i)
    await js.publish(f"{queue.subject}.other", b"not for this consumer")
    assert (await read_backlog(js, queue.stream, queue.durable)).pending == 7

    sub = await js.pull_subscribe_bind(queue.durable, stream=queue.stream)
    msgs = await sub.fetch(3, timeout=DEADLINE)
    assert len(msgs) == 3
    given = await read_backlog(js, queue.stream, queue.durable)
    assert given.pending == 7  # 4 not given + 3 given, not acknowledged yet
    for m in msgs:
        await m.ack_sync()
    done = await read_backlog(js, queue.stream, queue.durable)
    assert (done.pending, done.error, done.known) == (4, "", True)


async def test_missing_stream_or_consumer_is_missing_not_zero(queue: Queue) -> None:
    no_consumer = await read_backlog(queue.js, queue.stream, "nobody")
    assert (no_consumer.pending, no_consumer.error, no_consumer.known) == (None, MISSING_CONSUMER, False)
    no_stream = await read_backlog(queue.js, "AS_NO_SUCH_STREAM", queue.durable)
    assert (no_stream.pending, no_stream.error) == (None, MISSING_STREAM)
    bad_name = await read_backlog(queue.js, "bad.name", queue.durable)
    assert bad_name.pending is None and bad_name.error


async def test_consumer_subjects_are_its_filter_else_the_streams(queue: Queue) -> None:
    """What a wake from zero watches (test_stream_wake.py: the wake itself)."""
    assert await consumer_subjects(queue.js, queue.stream, queue.durable) == [f"{queue.subject}.jobs"]
    await queue.js.add_consumer(
        queue.stream, ConsumerConfig(durable_name="all", ack_policy=AckPolicy.EXPLICIT)
    )
    assert await consumer_subjects(queue.js, queue.stream, "all") == [f"{queue.subject}.>"]
