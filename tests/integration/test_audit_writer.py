"""The audit writer on the session's real nats-server, writing to SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.js.errors
import pytest_asyncio
from bay.v1 import group_pb2
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from sqlalchemy import Engine
from sqlmodel import Session

from libs.eventjson import event_dict
from libs.eventlog import StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import EventMeta, make_envelope
from libs.events.subjects import subject_for
from libs.natsconn import NatsConnection, connect
from services.gateway.audit.db import init_db, make_engine
from services.gateway.audit.query import query_events
from services.gateway.audit.sqlstore import SqlAuditStore
from services.gateway.audit.writer import PROGRESS_SUBJECT, AuditWriter
from tests.conftest import NatsProcess
from tests.integration.test_audit_store import postgres_database

DEADLINE = 15.0
STREAM = "BAY_EVENTS"
DURABLE = "bay-audit"


class Progress:
    """The writer's ``bay.audit.progress`` messages, to wait on instead of polling the database."""

    def __init__(self) -> None:
        self.values: asyncio.Queue[int] = asyncio.Queue()

    async def on_msg(self, msg: Any) -> None:
        await self.values.put(int(msg.data))

    async def reached(self, sequence: int) -> None:
        async def wait() -> None:
            while await self.values.get() < sequence:
                pass

        await asyncio.wait_for(wait(), DEADLINE)


@dataclass
class Env:
    conn: NatsConnection
    log: JetStreamEventLog
    progress: Progress
    tmp: Path

    @property
    def js(self) -> Any:
        return self.conn.client.jetstream()

    async def append(self, n: int, group: str = "web") -> None:
        for _ in range(n):
            last = await self.log.last_sequence(subject_for("group", group))
            env = make_envelope(
                group_pb2.GroupScaled(instances=last + 1, previous=last, reason="test"),
                aggregate_type="group",
                aggregate_id=group,
                aggregate_version=last + 1,
                meta=EventMeta(actor="ops"),
            )
            await self.log.append(subject_for("group", group), env, expected_last_seq=last)

    def store(self, name: str = "audit.db") -> tuple[SqlAuditStore, Engine]:
        engine = make_engine(f"sqlite:///{self.tmp / name}")
        init_db(engine)
        return SqlAuditStore(engine, DURABLE), engine


@pytest_asyncio.fixture
async def env(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Env]:
    conn = await connect(fresh_stream, name="audit-test")
    log = JetStreamEventLog(conn, StreamSettings())
    await log.ensure_stream()
    progress = Progress()
    await conn.client.subscribe(PROGRESS_SUBJECT, cb=progress.on_msg)
    await conn.client.flush()
    yield Env(conn, log, progress, tmp_path)
    await conn.close()


@contextlib.asynccontextmanager
async def running(e: Env, store: SqlAuditStore, stream: str = STREAM) -> AsyncIterator[AuditWriter]:
    stop = asyncio.Event()
    writer = AuditWriter(
        e.conn, store, stream=stream, durable=DURABLE, batch_size=4, fetch_timeout=1.0, retry_seconds=0.1
    )
    task = asyncio.create_task(writer.run(stop))
    try:
        yield writer
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def stream_events(e: Env) -> list[dict[str, Any]]:
    return [event_dict(r.sequence, r.subject, r.envelope) async for r in e.log.read(1)]


def audit_rows(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return query_events(session, limit=1000)


async def test_writes_every_event_once_and_resumes_exactly(env: Env) -> None:
    store, engine = env.store()
    await env.append(10)  # more than a batch (4)
    async with running(env, store):
        await env.progress.reached(10)
        assert audit_rows(engine) == await stream_events(env)
    await env.append(3, group="api")
    async with running(env, store):
        await env.progress.reached(13)
        await env.append(2)  # live, while it runs
        await env.progress.reached(15)
    rows = audit_rows(engine)
    assert [r["sequence"] for r in rows] == list(range(1, 16))
    assert rows == await stream_events(env)
    assert store.cursor() == 15


async def test_events_committed_before_a_crash_are_not_written_again(env: Env) -> None:
    store, engine = env.store()
    await env.append(6)
    # the previous run committed 1..4 and died before acking: the consumer still owes them
    await env.js.add_consumer(STREAM, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT))
    store.write([r async for r in env.log.read(1) if r.sequence <= 4])
    async with running(env, store):
        await env.progress.reached(6)
    assert audit_rows(engine) == await stream_events(env)
    info = await env.js.consumer_info(STREAM, DURABLE)
    assert info.config.deliver_policy == DeliverPolicy.ALL  # the same consumer: 1..4 came again, skipped
    assert info.delivered.consumer_seq == 6


async def test_a_deleted_consumer_is_recreated_at_the_cursor(env: Env) -> None:
    store, engine = env.store()
    await env.append(3)
    async with running(env, store):
        await env.progress.reached(3)
        await env.js.delete_consumer(STREAM, DURABLE)  # while it runs
        await env.append(2)
        await env.progress.reached(5)
    await env.js.delete_consumer(STREAM, DURABLE)  # while it is stopped
    await env.append(2)
    async with running(env, store):
        await env.progress.reached(7)
    info = await env.js.consumer_info(STREAM, DURABLE)
    assert info.config.opt_start_seq == 6 and info.delivered.consumer_seq == 2
    assert audit_rows(engine) == await stream_events(env)


async def test_a_database_behind_the_consumer_is_refilled(env: Env) -> None:
    store, _ = env.store("first.db")
    await env.append(5)
    async with running(env, store):
        await env.progress.reached(5)
    restored, engine = env.store("restored-from-an-old-backup.db")  # the consumer is at 5, this at 0
    async with running(env, restored):
        await env.progress.reached(5)
    assert audit_rows(engine) == await stream_events(env)


async def test_a_consumer_skipping_ahead_is_rewound(env: Env) -> None:
    store, engine = env.store()
    # a consumer that will hand out group "b" only: from the writer's view it skips events
    await env.js.add_consumer(
        STREAM,
        ConsumerConfig(
            durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, filter_subject=subject_for("group", "b")
        ),
    )
    async with running(env, store):
        await env.progress.reached(0)  # it is bound to that consumer
        await env.append(2, group="a")
        await env.append(1, group="b")
        await env.progress.reached(3)
    assert audit_rows(engine) == await stream_events(env)


async def test_events_missing_from_the_stream_are_passed_over(env: Env) -> None:
    # the event stream denies deletes; a stream of the same shape that allows them shows the holes
    name = "AUDIT_HOLES"
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await env.js.delete_stream(name)
    await env.js.add_stream(StreamConfig(name=name, subjects=["holes.>"]))
    try:
        log = JetStreamEventLog(env.conn, StreamSettings(name=name, subjects=("holes.>",)))
        for i in range(1, 7):
            envelope = make_envelope(
                group_pb2.GroupScaled(instances=i),
                aggregate_type="group",
                aggregate_id="h",
                aggregate_version=i,
                meta=EventMeta(),
            )
            await log.append("holes.group.h", envelope)
        for seq in (1, 3, 4):
            await env.js.delete_msg(name, seq)
        store, engine = env.store()
        async with running(env, store, stream=name):
            await env.progress.reached(6)
        assert [r["sequence"] for r in audit_rows(engine)] == [2, 5, 6]
    finally:
        await env.js.delete_stream(name)


class LogLine(logging.Handler):
    """Sets an event when the audit logger writes a line containing ``needle``."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.WARNING)
        self.needle = needle
        self.seen = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.loop.call_soon_threadsafe(self.seen.set)


async def test_a_database_outage_holds_the_batch_unacked_until_it_is_back(env: Env) -> None:
    with postgres_database() as db:
        engine = make_engine(db.url)
        init_db(engine)
        store = SqlAuditStore(engine, DURABLE)
        watch = LogLine("audit database unavailable")
        logging.getLogger("bay.audit").addHandler(watch)
        try:
            await env.append(3)
            async with running(env, store):
                await env.progress.reached(3)
                db.admin.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS false')
                db.admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db.name,)
                )
                await env.append(1)
                await asyncio.wait_for(watch.seen.wait(), DEADLINE)
                info = await env.js.consumer_info(STREAM, DURABLE)
                assert info.num_ack_pending == 1 and info.ack_floor.stream_seq == 3  # fetched, not acked
                db.admin.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS true')
                await env.progress.reached(4)
            assert audit_rows(engine) == await stream_events(env)
        finally:
            logging.getLogger("bay.audit").removeHandler(watch)
            engine.dispose()


async def test_it_carries_on_after_nats_restarts(env: Env, nats_server: NatsProcess) -> None:
    store, engine = env.store()
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    env.conn.on_reconnect(on_reconnect)
    await env.append(2)
    async with running(env, store):
        await env.progress.reached(2)
        nats_server.stop()
        nats_server.start()
        await asyncio.wait_for(reconnected.wait(), DEADLINE)
        await env.append(2)
        await env.progress.reached(4)
    assert audit_rows(engine) == await stream_events(env)
