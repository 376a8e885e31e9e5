"""The wake-up from zero through an ephemeral JetStream consumer, as a user with no more than a
stream reader's rights (libs.natsperms.read_stream), on a nats-server of the test's own: it fires
for messages the stream stores, sourced ones included, and leaves no consumer behind."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest_asyncio
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, StreamSource

from libs.natsperms import REPLIES, NatsUser, Permissions, authorization_block, read_stream
from libs.natsusers import public_key
from services.autoscaler.sources.backlog import StreamWake, consumer_subjects, read_backlog
from tests.integration.autoscaler.conftest import own_server, seed_file

WAKE_WITHIN = 5.0  # a deadline, not a figure: nothing here polls, and CI machines are loaded
STREAM = "WORK"  # sources INTAKE: its messages are stored without a publish on its subjects
INTAKE = "INTAKE"


@dataclass
class Clients:
    admin: Client  # every right: makes the streams, publishes the work
    reader: Client  # a stream reader of WORK only: what the autoscaler would be


@pytest_asyncio.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Clients]:
    reader_seed = seed_file(tmp_path / "reader.nk")
    admin_seed = seed_file(tmp_path / "admin.nk")
    users = [
        NatsUser("reader", public_key(reader_seed), Permissions(read_stream(STREAM), REPLIES)),
        NatsUser("admin", public_key(admin_seed), None),
    ]
    async with own_server(tmp_path, authorization_block(users), admin_seed) as server:
        admin = await nats.connect(server.url)
        reader = await nats.connect(server.url, nkeys_seed=str(reader_seed))
        js = admin.jetstream()
        await js.add_stream(name=INTAKE, subjects=["intake.>"])
        await js.add_stream(name=STREAM, subjects=["work.>"], sources=[StreamSource(name=INTAKE)])
        await js.add_consumer(
            STREAM,
            ConsumerConfig(durable_name="workers", ack_policy=AckPolicy.EXPLICIT, filter_subject="work.jobs"),
        )
        try:
            yield Clients(admin, reader)
        finally:
            await reader.close()
            await admin.close()


async def consumers(admin: Client) -> set[str]:
    return {c.name for c in await admin.jetstream().consumers_info(STREAM)}


async def test_stream_wake_fires_on_a_stored_message_with_reader_rights(clients: Clients) -> None:
    js = clients.reader.jetstream()
    watched = await consumer_subjects(js, STREAM, "workers")
    assert watched == ["work.jobs"]
    wake = StreamWake(clients.reader, STREAM, watched)
    await wake.arm()
    try:
        assert (await read_backlog(js, STREAM, "workers")).pending == 0
        assert len(await consumers(clients.admin)) == 2  # workers, and the wake's own
        await clients.admin.jetstream().publish("work.other", b"not watched")
        assert not await wake.wait(0.2)
        started = time.monotonic()
        await clients.admin.jetstream().publish("work.jobs", b"first")
        assert await wake.wait(WAKE_WITHIN)
        assert time.monotonic() - started < WAKE_WITHIN
        assert (await read_backlog(js, STREAM, "workers")).pending == 1
    finally:
        await wake.disarm()
    assert await consumers(clients.admin) == {"workers"}  # nothing left behind


async def test_stream_wake_fires_for_sourced_messages(clients: Clients) -> None:
    """A message published to INTAKE lands in WORK through its source, with no publish on WORK's
    subjects that a core subscription could hear."""
    wake = StreamWake(clients.reader, STREAM, ["intake.>"])
    await wake.arm()
    try:
        await clients.admin.jetstream().publish("intake.jobs", b"sourced")
        assert await wake.wait(WAKE_WITHIN)
    finally:
        await wake.disarm()
