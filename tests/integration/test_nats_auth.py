"""NATS permissions on the session's server (Bay's own users, as ``bay up`` makes them): a service
publishes only its own subjects, nobody but the set-up manages the stream, and an audit credential
made by ``bay nats audit-credential`` reads every event and writes nothing."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from bay.v1 import group_pb2, registry_pb2
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig
from sqlmodel import Session

from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.natsconn import connect
from services.gateway.audit.db import init_db, make_engine
from services.gateway.audit.query import query_events
from services.gateway.audit.sqlstore import SqlAuditStore
from services.gateway.audit.writer import PROGRESS_SUBJECT, AuditWriter
from tests import natsauth
from tests.conftest import NatsProcess
from tests.integration.registry_harness import RunningRegistry, start_registry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, kill_tasks, scale
from tests.integration.test_scheduler_local import port_range
from tests.poll import poll_until

DEADLINE = 10.0
SMALL = {"cpus": 0.1, "mem": 16}
BAY = str(Path(sys.executable).parent / "bay")


class Refusals:
    """The permission errors nats-server sends one connection."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.changed = asyncio.Event()

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc))
        self.changed.set()

    async def wait_for(self, subject: str) -> None:
        needle = f'permissions violation for publish to "{subject.lower()}"'

        async def seen() -> None:
            while not any(needle in e.lower() for e in self.errors):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(seen(), DEADLINE)
        except TimeoutError:
            raise AssertionError(f"NATS did not refuse {subject}; errors: {self.errors}") from None


async def as_user(url: str, seed: Path) -> tuple[Client, Refusals]:
    refusals = Refusals()
    nc = await nats.connect(url, nkeys_seed=str(seed), error_cb=refusals.on_error, allow_reconnect=False)
    return nc, refusals


def forged_scale(group: str, version: int) -> bytes:
    env = make_envelope(
        to_pb(m.GroupScaled(40, 1, "forged")),
        aggregate_type="group",
        aggregate_id=group,
        aggregate_version=version,
        meta=EventMeta("admin"),
    )
    return bytes(env.SerializeToString())


async def refused_publish(nc: Client, refusals: Refusals, subject: str, data: bytes = b"x") -> None:
    await nc.publish(subject, data, headers={"Nats-Msg-Id": os.urandom(8).hex()})
    await nc.flush()
    await refusals.wait_for(subject)


def make_audit_credential(data_dir: Path, name: str) -> tuple[Path, str, int, str]:
    """``bay nats audit-credential NAME``: the seed file, what it printed, the file's mode, the seed."""
    cli = subprocess.run(
        [BAY, "nats", "audit-credential", name],
        env={**os.environ, "BAY_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    seed = Path(cli.stdout.strip())
    said = " ".join((cli.stdout + cli.stderr).split())  # as a reader sees it, wrapped or not
    return seed, said, stat.S_IMODE(seed.stat().st_mode), seed.read_text().strip()


@pytest.fixture
async def registry(fresh_stream: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    reg = await start_registry(fresh_stream, tmp_path)
    await reg.stub.RegisterCluster(
        registry_pb2.RegisterClusterRequest(cluster=group_pb2.Cluster(name="local", backend="local")),
        metadata=reg.md(),
    )
    spec = group_pb2.GroupSpec(name="web", cmd="run", cluster="local", instances=1)
    await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md())
    yield reg
    await reg.stop()


async def test_a_forged_scale_from_a_reader_never_reaches_the_log(
    registry: RunningRegistry, fresh_stream: str
) -> None:
    before = await registry.log.last_sequence()
    for role in ("dns", "gateway", "audit", "scheduler-local"):
        nc, refusals = await as_user(fresh_stream, natsauth.seed(role))
        try:
            await refused_publish(nc, refusals, subjects.group("web"), forged_scale("web", 2))
            with pytest.raises(nats.errors.TimeoutError):  # JetStream never saw it: no ack comes
                await nc.jetstream(timeout=0.5).publish(subjects.group("web"), forged_scale("web", 2))
        finally:
            await nc.close()
    # a real command goes through; the fold has seen everything up to it, and no forged scale
    await registry.stub.ScaleGroup(
        registry_pb2.ScaleGroupRequest(name="web", instances=2), metadata=registry.md()
    )
    last = await registry.log.last_sequence()
    assert last == before + 1
    await registry.projection.wait_for(last, timeout=DEADLINE)
    assert registry.projection.state.groups["web"].instances == 2
    actors = [r.envelope.actor async for r in registry.log.read(1)]
    assert "admin" not in actors


async def test_a_scheduler_writes_only_its_own_clusters_subjects(
    registry: RunningRegistry, fresh_stream: str
) -> None:
    nc, refusals = await as_user(fresh_stream, natsauth.seed("scheduler-local"))
    try:
        for subject in (
            subjects.group("web"),
            subjects.CLUSTER_PREFIX + "local",
            subjects.BUILD_PREFIX + "b1",
            subjects.task("other", "web.1"),
            subjects.sched("other", "web"),
            subjects.framework("other"),
            "bay.usage.other.web",
        ):
            await refused_publish(nc, refusals, subject)
        js = nc.jetstream(timeout=DEADLINE)
        ack = await js.publish(subjects.sched("local", "web"), b"own")  # its own: stored
        assert ack.stream == "BAY_EVENTS"
        assert not any("bay.ev.sched.local" in e for e in refusals.errors)
    finally:
        await nc.close()


@pytest.mark.parametrize("role", ["registry", "scheduler-local", "dns", "gateway", "audit"])
async def test_no_service_may_delete_update_or_purge_the_stream(
    registry: RunningRegistry, fresh_stream: str, role: str
) -> None:
    nc, refusals = await as_user(fresh_stream, natsauth.seed(role))
    js = nc.jetstream(timeout=1.0)
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await js.delete_stream("BAY_EVENTS")
        await refusals.wait_for("$JS.API.STREAM.DELETE.BAY_EVENTS")
        with pytest.raises(nats.errors.TimeoutError):
            await js.update_stream(StreamConfig(name="BAY_EVENTS", subjects=["bay.>"], deny_delete=False))
        await refusals.wait_for("$JS.API.STREAM.UPDATE.BAY_EVENTS")
        with pytest.raises(nats.errors.TimeoutError):
            await js.add_stream(StreamConfig(name="EVIL", subjects=["evil.>"]))
        await refusals.wait_for("$JS.API.STREAM.CREATE.EVIL")
        info = await js.stream_info("BAY_EVENTS")  # reading it is allowed, and it is intact
        assert info.config.deny_delete and info.config.subjects == ["bay.ev.>"]
        assert info.state.messages == await registry.log.last_sequence()
    finally:
        await nc.close()


async def test_an_audit_credential_reads_every_event_and_writes_nothing(
    registry: RunningRegistry, fresh_stream: str, nats_server: NatsProcess
) -> None:
    data_dir = nats_server.users.root.parent
    seed, said, mode, secret = await asyncio.to_thread(make_audit_credential, data_dir, "acme")
    assert seed == data_dir / "nats-auth" / "audit" / "acme.nk"
    assert mode == 0o600 and nats_server.proc is not None and f"pid {nats_server.proc.pid}" in said
    assert secret not in said

    async def connected() -> Client | None:  # the reload takes effect shortly after the signal
        try:
            return (await as_user(fresh_stream, seed))[0]
        except (nats.errors.Error, OSError):
            return None

    probe = await poll_until(connected, "the reloaded server admits the audit credential", DEADLINE)
    await probe.close()
    nc, refusals = await as_user(fresh_stream, seed)
    try:
        await refused_publish(nc, refusals, subjects.group("web"), forged_scale("web", 2))
        await refused_publish(nc, refusals, "bay.audit.progress")
        js = nc.jetstream(timeout=1.0)
        with pytest.raises(nats.errors.TimeoutError):
            await js.delete_stream("BAY_EVENTS")
        # its own durable consumer, from the first event: every event, in order
        js = nc.jetstream(timeout=DEADLINE)
        last = await registry.log.last_sequence()
        sub = await js.pull_subscribe(
            "bay.ev.>",
            durable="acme",
            stream="BAY_EVENTS",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        seen: list[int] = []
        while len(seen) < last:
            for msg in await sub.fetch(last - len(seen), timeout=DEADLINE):
                seen.append(msg.metadata.sequence.stream)
                await msg.ack_sync()  # confirmed: the consumer info below counts it
        assert seen == list(range(1, last + 1))
        assert (await js.consumer_info("BAY_EVENTS", "acme")).num_ack_pending == 0
    finally:
        await nc.close()


async def test_a_forged_scale_launches_nothing_and_is_not_audited(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    """The scheduler and the audit writer, each under its own user, after a reader's forged scale."""
    sched = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=port_range())
    audit = await connect(fresh_stream, name="test-audit", credentials=natsauth.credentials("audit"))
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    await asyncio.to_thread(init_db, engine)
    writer = AuditWriter(audit, SqlAuditStore(engine, "bay-audit"), fetch_timeout=0.5)
    stop = asyncio.Event()
    writing = asyncio.create_task(writer.run(stop))
    watcher = await nats.connect(fresh_stream)
    positions: asyncio.Queue[int] = asyncio.Queue()

    async def on_progress(msg: Msg) -> None:
        await positions.put(int(msg.data))

    await watcher.subscribe(PROGRESS_SUBJECT, cb=on_progress)
    try:
        await sched.start()
        await create_group(registry, name="calm", cmd="sleep 300", instances=1, resources=SMALL)
        await sched.until("calm", lambda s: s.ready == 1)
        nc, refusals = await as_user(fresh_stream, natsauth.seed("dns"))
        await refused_publish(nc, refusals, subjects.group("calm"), forged_scale("calm", 2))
        await nc.close()
        await scale(registry, "calm", 2)
        await sched.until("calm", lambda s: s.ready == 2)
        assert len(await sched.tasks("calm")) == 2  # not 40
        last = await registry.log.last_sequence()

        async def audited() -> None:
            while await positions.get() < last:
                pass

        await asyncio.wait_for(audited(), DEADLINE)
        with Session(engine) as session:
            rows = query_events(session, limit=1000)
        assert [r["sequence"] for r in rows] == list(range(1, last + 1))
        assert "admin" not in {r["actor"] for r in rows}
    finally:
        stop.set()
        await asyncio.wait_for(writing, DEADLINE)
        await watcher.close()
        await audit.close()
        engine.dispose()
        await sched.stop()
        kill_tasks(tmp_path)
