"""StreamWakes, the autoscaler's wake-ups from zero, on a nats-server of the test's own: as the
autoscaler's NATS user (libs.natsperms.autoscaler) it arms on an application's stream and wakes at
its first stored message; a stream that is gone, or one its user may not read, is a reason in
``problems`` (and is tried again), never an error; a stopped watch leaves no consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest_asyncio
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig

from libs.natsperms import REPLIES, NatsUser, Permissions, authorization_block, autoscaler, read_stream
from libs.natsusers import public_key
from services.autoscaler.adapters.wakers import StreamWakes
from services.autoscaler.ports import Watch
from tests.integration.autoscaler.conftest import own_server, seed_file
from tests.poll import poll_until

DEADLINE = 10.0
WORK = Watch("work", "WORK", "workers")
GONE = Watch("gone", "GONE", "workers")
SECRET = Watch("secret", "SECRET", "workers")


@dataclass
class Clients:
    admin: Client  # every right: makes the streams, publishes the work
    autoscaler: Client  # Bay's autoscaler user
    reader: Client  # may read WORK only


@pytest_asyncio.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Clients]:
    seeds = {name: seed_file(tmp_path / f"{name}.nk") for name in ("admin", "autoscaler", "reader")}
    users = [
        NatsUser("admin", public_key(seeds["admin"]), None),
        NatsUser("autoscaler", public_key(seeds["autoscaler"]), autoscaler("BAY_EVENTS")),
        NatsUser("reader", public_key(seeds["reader"]), Permissions(read_stream("WORK"), REPLIES)),
    ]
    async with own_server(tmp_path, authorization_block(users), seeds["admin"]) as server:
        admin = await nats.connect(server.url)
        others = [await nats.connect(server.url, nkeys_seed=str(seeds[n])) for n in ("autoscaler", "reader")]
        js = admin.jetstream()
        for stream in ("WORK", "SECRET"):
            await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name="workers",
                    ack_policy=AckPolicy.EXPLICIT,
                    filter_subject=f"{stream.lower()}.jobs",
                ),
            )
        try:
            yield Clients(admin, *others)
        finally:
            for c in (*others, admin):
                await c.close()


async def consumers(admin: Client, stream: str) -> set[str]:
    return {c.name for c in await admin.jetstream().consumers_info(stream)}


async def test_wakes_arm_as_the_autoscaler_and_fire_at_the_first_stored_message(clients: Clients) -> None:
    wakes = StreamWakes(clients.autoscaler, timeout=1.0, retry_seconds=0.2)
    stop = asyncio.Event()
    try:
        await wakes.watch([WORK, GONE])
        # armed: counted as a wake (the check after arming); the stream that is gone, a reason
        assert await poll_until(lambda: wakes.wait(stop, 0.1), "the arm's wake", DEADLINE) == {"work"}
        assert wakes.armed == {WORK} and wakes.watched == {WORK, GONE}
        await poll_until(lambda: wakes.problems("gone"), "gone's reason", DEADLINE)
        assert wakes.problems("gone") == ["stream GONE not found"] and wakes.problems("work") == []
        assert len(await consumers(clients.admin, "WORK")) == 2  # workers, and the wake's

        assert await wakes.wait(stop, 0.2) == set()  # nothing stored: nothing woken
        await clients.admin.jetstream().publish("work.other", b"not the workers'")
        assert await wakes.wait(stop, 0.2) == set()
        await clients.admin.jetstream().publish("work.jobs", b"first")
        assert await wakes.wait(stop, DEADLINE) == {"work"}

        # the stream made after all: the retries arm it
        await clients.admin.jetstream().add_stream(name="GONE", subjects=["gone.>"])
        await clients.admin.jetstream().add_consumer("GONE", ConsumerConfig(durable_name="workers"))
        await poll_until(lambda: GONE in wakes.armed, "GONE armed once it exists", DEADLINE)
        assert wakes.problems("gone") == []
    finally:
        await wakes.aclose()
    assert await consumers(clients.admin, "WORK") == {"workers"}  # nothing left behind
    assert await consumers(clients.admin, "GONE") == {"workers"}


async def test_a_stream_its_user_may_not_read_is_a_reason_and_leaves_nothing(clients: Clients) -> None:
    wakes = StreamWakes(clients.reader, timeout=0.3, retry_seconds=0.2)
    try:
        await wakes.watch([SECRET])
        why = await poll_until(lambda: wakes.problems("secret"), "secret's reason", DEADLINE)
        assert "JetStream did not answer within 0.3 s" in why[0], why
        assert "read the stream" in why[0] and wakes.armed == frozenset()
        await wakes.watch([])
        assert wakes.watched == frozenset() and wakes.problems("secret") == []
    finally:
        await wakes.aclose()
    assert await consumers(clients.admin, "SECRET") == {"workers"}
