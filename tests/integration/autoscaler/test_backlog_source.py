"""A JetStream consumer's backlog on the session's real nats-server, and the wake-up from zero."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from services.autoscaler.sources.backlog import (
    MISSING_CONSUMER,
    MISSING_STREAM,
    BacklogWake,
    consumer_subjects,
    read_backlog,
)

DEADLINE = 10.0
WAKE_WITHIN = 2.0  # seconds from the first publish to the wake-up, on a loaded machine


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


async def test_wake_arrives_at_the_first_message_from_zero(nc: Client, queue: Queue) -> None:
    watched = await consumer_subjects(queue.js, queue.stream, queue.durable)
    assert watched == [f"{queue.subject}.jobs"]  # the consumer's filter, not the whole stream
    wake = BacklogWake(nc, watched)
    await wake.arm()
    try:
        assert (await read_backlog(queue.js, queue.stream, queue.durable)).pending == 0
        assert not await wake.wait(0.05)  # nothing yet

        # a message the consumer does not read does not wake it
        await queue.js.publish(f"{queue.subject}.other", b"x")
        assert not await wake.wait(0.2)

        # the first job wakes it, from another connection, within the deadline
        publisher = Client()
        await publisher.connect(nc.connected_url.geturl() if nc.connected_url else "")
        try:
            started = time.monotonic()
            await publisher.jetstream().publish(f"{queue.subject}.jobs", b"first")
            assert await wake.wait(WAKE_WITHIN)
            assert time.monotonic() - started < WAKE_WITHIN
        finally:
            await publisher.close()
        assert (await read_backlog(queue.js, queue.stream, queue.durable)).pending == 1

        # armed again (at zero again after the job is done): cleared, and woken by the next one
        sub = await queue.js.pull_subscribe_bind(queue.durable, stream=queue.stream)
        for m in await sub.fetch(1, timeout=DEADLINE):
            await m.ack_sync()
        await wake.arm()
        assert not wake.woken.is_set()
        await queue.js.publish(f"{queue.subject}.jobs", b"second")
        assert await wake.wait(WAKE_WITHIN)
    finally:
        await wake.disarm()
    assert not wake.armed


async def test_disarmed_wake_hears_nothing_and_stream_subjects_without_filter(
    nc: Client, queue: Queue
) -> None:
    await queue.js.add_consumer(
        queue.stream, ConsumerConfig(durable_name="all", ack_policy=AckPolicy.EXPLICIT)
    )
    watched = await consumer_subjects(queue.js, queue.stream, "all")
    assert watched == [f"{queue.subject}.>"]
    wake = BacklogWake(nc, watched)
    await wake.arm()
    await wake.disarm()
    await queue.js.publish(f"{queue.subject}.jobs", b"x")
    await nc.flush()
    await asyncio.sleep(0)  # any delivery already read would have run its callback by now
    assert not wake.woken.is_set()
