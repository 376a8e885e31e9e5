"""Benchmarks 1 and 2: replaying a long history, and restarting the registry from its snapshot."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from bench.history import fill
from bench.infra import REPO, NatsServer, RegistryProcess
from bench.report import Result
from libs.eventlog import Projection, StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import EventMeta
from libs.natsconn import NatsConnection, connect
from services.registry.adapters.codec import group_to_pb
from services.registry.domain import group as g
from services.registry.domain.registry import RegistryState
from services.registry.handlers import Registry
from services.registry.main import make_projection
from services.registry.settings import RegistrySettings

FOLD_TARGET = 100_000  # events/s
RESTART_TARGET = 1.0  # s


class HistorySession:
    """One nats-server holding the long history, built on first use and shared by both benchmarks."""

    def __init__(self, events: int, groups: int = 1_000) -> None:
        self.events = events
        self.groups = groups
        self.nats: NatsServer | None = None
        self.conn: NatsConnection | None = None
        self.log: JetStreamEventLog | None = None
        self.fill_seconds = 0.0
        self.folded: Projection[RegistryState] | None = None  # the fold from 0, kept for the snapshot

    async def ready(self) -> JetStreamEventLog:
        if self.log is not None:
            return self.log
        self.nats = NatsServer("history")
        self.conn = await connect(self.nats.url, name="bench-history")
        self.log = JetStreamEventLog(self.conn, StreamSettings(), timeout=10.0)
        await self.log.ensure_stream()
        print(f"(filling the stream with {self.events:,} registry events...)", flush=True)
        stats = await fill(self.nats.port, self.events, self.groups)
        if stats.last_sequence != self.events:
            raise RuntimeError(f"stream ends at {stats.last_sequence}, expected {self.events}")
        self.fill_seconds = stats.seconds
        print(f"(filled in {stats.seconds:.1f} s, {stats.events / stats.seconds:,.0f} events/s)", flush=True)
        return self.log

    def settings(self, data_dir: Path) -> RegistrySettings:
        assert self.nats is not None
        return RegistrySettings(
            nats_url=self.nats.url,
            data_dir=data_dir,
            snapshot_every=10**12,  # no snapshots mid-fold
        )

    async def fold_from_zero(self) -> Projection[RegistryState]:
        """The registry's own projection from sequence 0, no snapshot (its store starts empty)."""
        log = await self.ready()
        assert self.nats is not None
        proj = make_projection(log, self.settings(self.nats.dir / "registry"))
        await proj.start()
        if self.folded is not None:
            await self.folded.stop(snapshot=False)
        self.folded = proj
        return proj

    async def close(self) -> None:
        if self.folded is not None:
            await self.folded.stop(snapshot=False)
        if self.conn is not None:
            await self.conn.close()
        if self.nats is not None:
            self.nats.close()


async def run_replay(session: HistorySession) -> Result:
    res = Result("replay", f"replay a {session.events:,}-event registry history")
    log = await session.ready()
    res.params = {
        "events": session.events,
        "groups": session.groups,
        "GroupUpdated share": "3%",
        "rest": "GroupScaled",
    }
    res.add("fill (not a figure)", session.fill_seconds, "s")

    started = time.perf_counter()
    count = 0
    async for _rec in log.read(1):
        count += 1
    read_s = time.perf_counter() - started
    if count != session.events:
        raise RuntimeError(f"read {count} events, expected {session.events}")
    res.add("raw read (envelopes decoded) time", read_s, "s")
    read_rate = res.add("raw read rate", count / read_s, "events/s")

    proj = await session.fold_from_zero()
    fold_s = proj.restore_seconds
    if proj.sequence != session.events or len(proj.state.groups) != session.groups:
        raise RuntimeError(f"fold ended at {proj.sequence} with {len(proj.state.groups)} groups")
    res.add("registry fold from 0 time", fold_s, "s")
    fold_rate = res.add("registry fold rate", proj.replayed / fold_s, "events/s")
    res.target(
        f"registry fold >= {FOLD_TARGET:,} events/s", fold_rate >= FOLD_TARGET, f"{fold_rate:,.0f} events/s"
    )
    res.notes.append(
        f"fold = read + decode payload + apply: ~{(fold_s - read_s) / count * 1e6:.1f} us/event "
        f"on top of the raw read ({read_rate:,.0f} events/s)"
    )
    return res


async def run_restart(session: HistorySession, tail: int = 300) -> Result:
    res = Result("restart", f"registry restart with {session.events:,} events of history")
    res.params = {"events": session.events, "tail after snapshot": tail}
    log = await session.ready()
    assert session.nats is not None
    proj = session.folded or await session.fold_from_zero()
    data_dir = session.nats.dir / "registry"

    started = time.perf_counter()
    await proj.snapshot_now()
    res.add("snapshot save", time.perf_counter() - started, "s")
    res.add("snapshot size", (data_dir / "snapshots" / "registry.snap").stat().st_size, "bytes")

    registry = Registry(log, proj)
    meta = EventMeta(actor="bench")
    names = sorted(proj.state.groups)
    for i in range(tail):
        name = names[i % len(names)]
        instances = group_to_pb(proj.state.groups[name]).spec.instances % 50 + 1  # always a change
        await registry.group_command(g.ScaleGroup(name, instances, "bench tail"), meta)
    expected_seq = proj.sequence
    expected_groups = dict(proj.state.groups)
    await proj.stop(snapshot=False)
    session.folded = None

    fresh = make_projection(log, session.settings(data_dir))
    await fresh.start()
    with_snap = fresh.restore_seconds
    await fresh.stop(snapshot=False)
    _same_state(fresh, expected_seq, expected_groups)
    res.add("Projection.start from snapshot (load + tail)", with_snap, "s")
    res.add("events replayed after the snapshot", fresh.replayed, "events")

    bare = make_projection(log, session.settings(session.nats.dir / "no-snapshot"))
    await bare.start()
    await bare.stop(snapshot=False)
    _same_state(bare, expected_seq, expected_groups)
    res.add("Projection.start without snapshot", bare.restore_seconds, "s")
    res.target(
        f"restart from snapshot < {RESTART_TARGET:g} s", with_snap < RESTART_TARGET, f"{with_snap:.3f} s"
    )

    res.add("python start + registry imports", await _import_seconds(), "s")
    reg = RegistryProcess(session.nats.url, data_dir)
    try:
        await reg.ready()
    finally:
        reg.close()
    res.add("process spawn -> gRPC health SERVING (snapshot present)", reg.startup_seconds, "s")
    return res


def _same_state(proj: Projection[RegistryState], seq: int, groups: dict[str, g.Group]) -> None:
    """The restored groups are the folded ones (times compared to the microsecond: floats vs nanos)."""
    if proj.sequence != seq or proj.state.groups.keys() != groups.keys():
        raise RuntimeError(
            f"{proj.name}: restored at {proj.sequence} with {len(proj.state.groups)} groups, "
            f"folded at {seq} with {len(groups)}"
        )
    for name, want in groups.items():
        got = proj.state.groups[name]
        if _wire(got) != _wire(want) or abs(got.updated - want.updated) > 1e-6:
            raise RuntimeError(f"{proj.name}: group {name} restored as {got}, folded as {want}")


def _wire(grp: g.Group) -> bytes:
    msg = group_to_pb(grp)
    msg.ClearField("created")
    msg.ClearField("updated")
    return msg.SerializeToString(deterministic=True)


async def _import_seconds() -> float:
    """What every process start pays before it reads one event: the interpreter and the imports."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import services.registry.main",
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await proc.wait()
    return time.perf_counter() - started
