"""The lease on a real nats-server: one holder at a time, a dead local holder taken over at once, a
released lease free at once, an expired one free after its TTL, a holder told when it lost it; a
renewal whose answer was late or lost is not taken for a takeover."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from libs.lease import Holder, Lease
from libs.natsconn import NatsConnection, connect
from tests.integration.stall_proxy import StallProxy
from tests.poll import poll_until


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


async def test_a_renewal_that_landed_but_whose_answer_was_lost_keeps_the_lease(conn: NatsConnection) -> None:
    key = name()
    reasons: list[str] = []
    lease = Lease(conn, key, ttl=1.5, on_lost=reasons.append)
    assert await lease.acquire()
    kv = await lease._bucket()
    entry = await kv.get(key)
    # what a renewal whose answer never came leaves: the key moved on by the holder's own write
    moved = await kv.update(key, lease._value(), last=entry.revision)
    await poll_until(lambda: lease._revision > moved, "a renewal after the lost answer", 5)
    assert reasons == []
    holder = await lease.holder()
    assert holder is not None and holder.instance == lease.me.instance
    await lease.release()


async def test_a_stalled_connection_that_delays_renewal_answers_keeps_the_lease(
    fresh_stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bay.lease")
    proxy = await StallProxy(fresh_stream).start()
    conn = await connect(proxy.url, name="lease-stalled", wait_seconds=5)
    key = name()
    reasons: list[str] = []
    lease = Lease(conn, key, ttl=4, on_lost=reasons.append)  # renews every 1.3 s, each call waits 1 s
    try:
        assert await lease.acquire()
        acquired = lease._revision
        await poll_until(lambda: lease._revision > acquired, "a first renewal", 5)
        renewed = lease._revision
        kv = await lease._bucket()
        proxy.stall("down", seconds=3)  # the next renewal lands; its answer comes after it gave up
        await poll_until(lambda: lease._revision > renewed + 1, "renewals after the stall", 10)
        assert reasons == []
        assert "still held" in caplog.text  # the renewal did fail, and was not taken for a takeover
        entry = await kv.get(key)
        assert entry.revision == lease._revision
    finally:
        await lease.release()
        await conn.close()
        await proxy.stop()


async def test_a_holder_cut_off_past_its_ttl_loses_the_lease_to_the_next(fresh_stream: str) -> None:
    proxy = await StallProxy(fresh_stream).start()
    cut = await connect(proxy.url, name="lease-cut-off", wait_seconds=5)
    direct = await connect(fresh_stream, name="lease-next", wait_seconds=5)
    key = name()
    lost = asyncio.Event()
    reasons: list[str] = []

    def on_lost(why: str) -> None:
        reasons.append(why)
        lost.set()

    first = Lease(cut, key, ttl=2, on_lost=on_lost)
    second = Lease(direct, key, ttl=2)
    try:
        assert await first.acquire()
        proxy.stall("both")
        assert await asyncio.wait_for(second.acquire(), 10)  # after the key expired
        await asyncio.wait_for(lost.wait(), 10)
        proxy.resume()
        holder = await second.holder()
        assert holder is not None and holder.instance == second.me.instance
        assert first._renewer is not None
        await asyncio.wait_for(first._renewer, 5)  # it stopped renewing, and never took the key back
        holder = await second.holder()
        assert holder is not None and holder.instance == second.me.instance
    finally:
        await second.release()
        await direct.close()
        await cut.close()
        await proxy.stop()
