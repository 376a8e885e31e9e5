"""One contract for every EventLog adapter: the in-memory fake and JetStream must behave alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from bay.v1 import group_pb2

from libs.errors import Conflict, TooLarge
from libs.eventlog import EventLog, StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.eventlog.memory import MemoryEventLog
from libs.eventlog.port import AppendResult
from libs.events import EventMeta, make_envelope
from libs.natsconn import connect
from tests.conftest import reset_stream


@pytest_asyncio.fixture(params=["memory", "jetstream"])
async def log(request: pytest.FixtureRequest) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield MemoryEventLog()
        return
    url = await reset_stream(request.getfixturevalue("nats_server"))
    conn = await connect(url, name="contract", wait_seconds=5)
    js_log = JetStreamEventLog(conn, StreamSettings())
    await js_log.ensure_stream()
    yield js_log
    await conn.close()


def env(n: int, key: str = "", agg: str = "web"):  # type: ignore[no-untyped-def]
    return make_envelope(
        group_pb2.GroupScaled(instances=n, previous=n - 1),
        aggregate_type="group",
        aggregate_id=agg,
        aggregate_version=n,
        meta=EventMeta(idempotency_key=key),
    )


async def test_append_assigns_increasing_sequences(log: EventLog) -> None:
    a = await log.append("bay.ev.group.web", env(1), expected_last_seq=0)
    b = await log.append("bay.ev.group.web", env(2), expected_last_seq=a.sequence)
    c = await log.append("bay.ev.group.api", env(1, agg="api"), expected_last_seq=0)
    assert a.sequence < b.sequence < c.sequence
    assert await log.last_sequence() == c.sequence
    assert await log.last_sequence("bay.ev.group.web") == b.sequence
    assert await log.last_sequence("bay.ev.group.nothing") == 0


async def test_stale_writer_gets_conflict_and_nothing_is_written(log: EventLog) -> None:
    first = await log.append("bay.ev.group.web", env(1), expected_last_seq=0)
    with pytest.raises(Conflict):
        await log.append("bay.ev.group.web", env(2), expected_last_seq=0)
    with pytest.raises(Conflict):
        await log.append("bay.ev.group.web", env(3), expected_last_seq=first.sequence + 5)
    assert await log.last_sequence() == first.sequence


async def test_same_event_id_is_stored_once(log: EventLog) -> None:
    e = env(1, key="k1")
    a = await log.append("bay.ev.group.web", e, expected_last_seq=0)
    b = await log.append("bay.ev.group.web", e)
    assert b.duplicate and b.sequence == a.sequence
    assert [r.sequence async for r in log.read(1)] == [a.sequence]


async def test_retry_of_a_stored_append_is_a_duplicate_even_with_a_stale_expectation(log: EventLog) -> None:
    """A client whose append timed out retries with the same id and the same expected sequence."""
    e = env(1, key="k2")
    a = await log.append("bay.ev.group.web", e, expected_last_seq=0)
    b = await log.append("bay.ev.group.web", e, expected_last_seq=0)
    assert b.duplicate and b.sequence == a.sequence


async def test_read_from_sequence_and_filter(log: EventLog) -> None:
    seqs = []
    for i in range(1, 6):
        r = await log.append(f"bay.ev.group.g{i % 2}", env(i, agg=f"g{i % 2}"))
        seqs.append(r.sequence)
    got = [(r.sequence, r.envelope.aggregate_version) async for r in log.read(seqs[2])]
    assert got == [(s, i) for i, s in enumerate(seqs, start=1)][2:]
    odd = [r.subject async for r in log.read(1, subject_filter="bay.ev.group.g1")]
    assert odd == ["bay.ev.group.g1"] * 3


async def test_follow_delivers_new_events_in_order(log: EventLog) -> None:
    await log.append("bay.ev.group.web", env(1))
    received: list[int] = []
    done = asyncio.Event()

    async def follow() -> None:
        async for rec in log.read(1, follow=True):
            received.append(rec.envelope.aggregate_version)
            if len(received) == 4:
                done.set()
                return

    task = asyncio.create_task(follow())
    for i in range(2, 5):
        await log.append("bay.ev.group.web", env(i))
    await asyncio.wait_for(done.wait(), 5)
    await task
    assert received == [1, 2, 3, 4]


async def test_read_of_an_empty_log_ends(log: EventLog) -> None:
    assert [r async for r in log.read(1)] == []


async def test_a_batch_is_stored_in_order_and_a_repeated_event_id_once(log: EventLog) -> None:
    first = [(f"bay.ev.group.g{i % 7}", env(i, agg=f"g{i % 7}")) for i in range(1, 501)]
    results = await log.append_batch(first)
    assert all(isinstance(r, AppendResult) and not r.duplicate for r in results)
    seqs = [r.sequence for r in results if isinstance(r, AppendResult)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 500
    stored = [rec async for rec in log.read(1)]
    assert [(r.subject, r.envelope.event_id) for r in stored] == [(s, e.event_id) for s, e in first]
    again = await log.append_batch(first[:3])  # a retried batch: the same event ids
    assert [r.sequence for r in again if isinstance(r, AppendResult)] == seqs[:3]
    assert all(isinstance(r, AppendResult) and r.duplicate for r in again)
    assert await log.last_sequence() == seqs[-1]


async def test_follow_sees_a_large_burst_complete_and_in_order(log: EventLog) -> None:
    received: list[int] = []
    done = asyncio.Event()

    async def follow() -> None:
        async for batch in log.read_batches(1, follow=True):
            received.extend(rec.sequence for rec in batch)
            if len(received) >= 2000:
                done.set()
                return

    task = asyncio.create_task(follow())
    results = await log.append_batch(
        [(f"bay.ev.group.b{i % 50}", env(i, agg=f"b{i % 50}")) for i in range(1, 2001)]
    )
    await asyncio.wait_for(done.wait(), 10)
    await task
    assert received == [r.sequence for r in results if isinstance(r, AppendResult)]


async def test_an_event_over_the_message_limit_is_refused_and_nothing_is_written(log: EventLog) -> None:
    first = await log.append("bay.ev.group.web", env(1), expected_last_seq=0)
    big = env(2)
    big.payload.value = b"x" * log.max_message_bytes  # with the envelope and headers: over the limit
    with pytest.raises(TooLarge) as info:
        await log.append("bay.ev.group.web", big, expected_last_seq=first.sequence)
    assert str(log.max_message_bytes) in info.value.message
    assert await log.last_sequence() == first.sequence


async def test_read_subjects_takes_several_filters_and_stops_at_a_sequence(log: EventLog) -> None:
    """What time travel reads: a group's own subjects (wildcards too), up to a point."""
    wanted = ("bay.ev.group.web", "bay.ev.task.*.web.*")
    seqs = [
        (await log.append(subject, env(1, agg=subject.split(".")[-1]))).sequence
        for subject in (
            "bay.ev.group.web",
            "bay.ev.group.api",
            "bay.ev.task.local.web.a1",
            "bay.ev.task.local.api.b1",
            "bay.ev.task.eu.web.c1",
            "bay.ev.task.local.web2.d1",
        )
    ]
    got = [r.sequence async for batch in log.read_subjects(wanted) for r in batch]
    assert got == [seqs[0], seqs[2], seqs[4]]
    upto = [r.sequence async for batch in log.read_subjects(wanted, until_seq=seqs[3]) for r in batch]
    assert upto == [seqs[0], seqs[2]]
    assert [r async for r in log.read_subjects(("bay.ev.group.nothing",))] == []
