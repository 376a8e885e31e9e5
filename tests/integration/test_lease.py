"""The lease on a real nats-server: one holder at a time, a dead local holder taken over at once, a
released lease free at once, an expired one free after its TTL, a holder told when it lost it."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from libs.lease import Holder, Lease
from libs.natsconn import NatsConnection, connect


@pytest_asyncio.fixture
async def conn(fresh_stream: str) -> AsyncIterator[NatsConnection]:
    c = await connect(fresh_stream, name="lease-test", wait_seconds=5)
    yield c
    await c.close()


def name() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


async def test_one_holder_at_a_time_and_release_frees_it(conn: NatsConnection) -> None:
    key = name()
    first, second = Lease(conn, key, ttl=30), Lease(conn, key, ttl=30)
    assert await first.acquire()
    stop = asyncio.Event()
    waiting = asyncio.create_task(second.acquire(stop))
    done, _ = await asyncio.wait({waiting}, timeout=1.5)  # several tries, all refused: first is alive
    assert not done
    holder = await second.holder()
    assert holder is not None and holder.instance == first.me.instance
    await first.release()
    assert await asyncio.wait_for(waiting, 5)
    holder = await first.holder()
    assert holder is not None and holder.instance == second.me.instance
    await second.release()


async def test_a_holder_whose_process_is_gone_is_taken_over_at_once(conn: NatsConnection) -> None:
    key = name()
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    ghost = Lease(conn, key, ttl=30)
    ghost.me = Holder(ghost.me.host, dead.pid, "ghost", ghost.me.since)  # as a killed scheduler left it
    assert await ghost.acquire()
    assert ghost._renewer is not None
    ghost._renewer.cancel()  # it died: nobody renews
    heir = Lease(conn, key, ttl=30)
    assert await asyncio.wait_for(heir.acquire(), 5)  # well before the 30 s TTL
    holder = await heir.holder()
    assert holder is not None and holder.instance == heir.me.instance
    await heir.release()


async def test_an_unrenewed_lease_of_another_host_expires_after_its_ttl(conn: NatsConnection) -> None:
    key = name()
    remote = Lease(conn, key, ttl=2)
    remote.me = Holder("some-other-host", 1, "remote", remote.me.since)
    assert await remote.acquire()
    assert remote._renewer is not None
    remote._renewer.cancel()
    local = Lease(conn, key, ttl=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.wait_for(local.acquire(), 10)
    assert loop.time() - started >= 1.0  # it had to wait for the key to expire
    await local.release()


async def test_a_holder_that_was_taken_over_is_told(conn: NatsConnection) -> None:
    key = name()
    lost = asyncio.Event()
    reasons: list[str] = []

    def on_lost(why: str) -> None:
        reasons.append(why)
        lost.set()

    holder = Lease(conn, key, ttl=1.5, on_lost=on_lost)
    assert await holder.acquire()
    kv = await holder._bucket()
    entry = await kv.get(key)
    await kv.update(key, b'{"host": "x", "pid": 1, "instance": "usurper", "since": 0}', last=entry.revision)
    await asyncio.wait_for(lost.wait(), 5)
    assert "taken over" in reasons[0]
