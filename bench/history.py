"""A long registry history, written fast: one cluster, 1,000 groups, then scales and a few updates.

The events are the registry's own (domain events through ``libs.events.to_pb`` and ``make_envelope``),
with the headers a real append carries (``Nats-Msg-Id``, ``Nats-Expected-Last-Subject-Sequence``),
so a replay reads what production would hold. Filling is not a figure: the publisher speaks the
NATS protocol directly, keeps a window of appends in flight and counts the JetStream acks.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from bay.v1 import group_pb2
from google.protobuf import message

from bench.infra import group_spec
from libs.events import EventMeta, make_envelope
from libs.events import to_pb as event_to_pb
from libs.events.subjects import subject_for
from libs.spec_pb import spec_from_pb
from services.registry.domain import group as g
from services.registry.domain.catalog import Cluster, ClusterRegistered

WINDOW = 20_000  # appends in flight
BATCH = 1_000  # appends per socket write
_SEQ = re.compile(rb'"seq":(\d+)')


@dataclass
class _GroupState:
    spec: group_pb2.GroupSpec  # the wire form: updates copy it instead of converting a model again
    instances: int
    version: int = 1
    aggregate_version: int = 1


@dataclass(frozen=True)
class Planned:
    subject: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    payload: message.Message


def plan_history(total: int, groups: int, update_share: float, seed: int = 7) -> Iterator[Planned]:
    """``total`` events: the cluster, ``groups`` creations, then scales with ``update_share`` updates.

    The cluster and the creations go through the registry's ``event_to_pb``. Updates and scales are
    the same messages built directly from the created spec: the model-to-wire route (JSON) costs
    about 0.3 ms per spec, which would make the fill, not the replay, the slow part.
    """
    rng = random.Random(seed)
    cluster = ClusterRegistered(Cluster("local", "local"))
    yield Planned(subject_for("cluster", "local"), "cluster", "local", 1, event_to_pb(cluster))
    names = [f"svc-{i:04d}" for i in range(groups)]
    state: dict[str, _GroupState] = {}
    for name in names[: max(0, total - 1)]:
        model = spec_from_pb(group_spec(name, instances=rng.randint(1, 20)))
        created = event_to_pb(g.GroupCreated(model, 1))
        state[name] = _GroupState(created.spec, model.instances)  # type: ignore[attr-defined]
        yield Planned(subject_for("group", name), "group", name, 1, created)
    for n in range(total - 1 - len(state)):
        name = names[rng.randrange(groups)]
        st = state[name]
        st.aggregate_version += 1
        payload: message.Message
        if rng.random() < update_share:
            spec = group_pb2.GroupSpec()
            spec.CopyFrom(st.spec)
            spec.env["BUILD"] = str(n)
            spec.instances = st.instances
            st.spec = spec
            st.version += 1
            payload = group_pb2.GroupUpdated(spec=spec, version=st.version)
        else:
            previous = st.instances
            st.instances = rng.randint(1, 50)
            if st.instances == previous:
                st.instances = previous % 50 + 1
            payload = group_pb2.GroupScaled(instances=st.instances, previous=previous, reason="bench load")
        yield Planned(subject_for("group", name), "group", name, st.aggregate_version, payload)


@dataclass
class FillStats:
    events: int
    seconds: float
    last_sequence: int


class _Acks:
    """Reads JetStream publish acks off the raw connection; any error ack stops the fill."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.count = 0
        self.last_seq = 0
        self.error = ""
        self.changed = asyncio.Event()

    async def run(self) -> None:
        buf = b""
        while True:
            chunk = await self.reader.read(1 << 20)
            if not chunk:
                self.error = self.error or "NATS closed the connection"
                self.changed.set()
                return
            buf += chunk
            pos = 0
            while (eol := buf.find(b"\r\n", pos)) >= 0:
                if buf.startswith(b"MSG", pos):
                    size = int(buf[pos:eol].rsplit(b" ", 1)[1])
                    end = eol + 2 + size + 2
                    if end > len(buf):
                        break
                    payload = buf[eol + 2 : eol + 2 + size]
                    if b'"error"' in payload:
                        self.error = payload.decode(errors="replace")
                    else:
                        found = _SEQ.search(payload)
                        self.last_seq = max(self.last_seq, int(found.group(1)) if found else 0)
                    self.count += 1
                    pos = end
                elif buf.startswith(b"PING", pos):
                    self.writer.write(b"PONG\r\n")
                    pos = eol + 2
                elif buf.startswith(b"-ERR", pos):
                    self.error = buf[pos:eol].decode(errors="replace")
                    pos = eol + 2
                else:
                    pos = eol + 2
            buf = buf[pos:]
            self.changed.set()


async def fill(
    nats_port: int, total: int, groups: int = 1_000, update_share: float = 0.03, first_sequence: int = 1
) -> FillStats:
    """Append ``total`` planned events to an empty BAY_EVENTS stream (created beforehand)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", nats_port, limit=1 << 22)
    await reader.readline()  # INFO
    inbox = f"_BENCH.{uuid.uuid4().hex}"
    opts = {
        "verbose": False,
        "pedantic": False,
        "headers": True,
        "protocol": 1,
        "echo": False,
        "name": "bench-fill",
    }
    writer.write(b"CONNECT " + json.dumps(opts).encode() + f"\r\nSUB {inbox}.* 1\r\nPING\r\n".encode())
    await writer.drain()
    while (line := await reader.readline()) != b"PONG\r\n":
        if not line or line.startswith(b"-ERR"):
            raise RuntimeError(f"NATS refused the fill connection: {line!r}")
    acks = _Acks(reader, writer)
    ack_task = asyncio.create_task(acks.run())
    meta = EventMeta(actor="bench", correlation_id=str(uuid.uuid4()))
    last_by_subject: dict[str, int] = {}
    started = time.perf_counter()
    sent = 0
    parts: list[bytes] = []
    try:
        for p in plan_history(total, groups, update_share):
            seq = first_sequence + sent
            env = make_envelope(
                p.payload,
                aggregate_type=p.aggregate_type,
                aggregate_id=p.aggregate_id,
                aggregate_version=p.aggregate_version,
                meta=meta,
            )
            body = env.SerializeToString()
            hdr = (
                f"NATS/1.0\r\nNats-Msg-Id: {env.event_id}\r\n"
                f"Nats-Expected-Last-Subject-Sequence: {last_by_subject.get(p.subject, 0)}\r\n\r\n"
            ).encode()
            last_by_subject[p.subject] = seq
            parts.append(
                f"HPUB {p.subject} {inbox}.{sent} {len(hdr)} {len(hdr) + len(body)}\r\n".encode()
                + hdr
                + body
                + b"\r\n"
            )
            sent += 1
            if len(parts) >= BATCH:
                await _flush(writer, parts, acks, sent)
        await _flush(writer, parts, acks, sent)
        while acks.count < sent and not acks.error:
            acks.changed.clear()
            await asyncio.wait_for(acks.changed.wait(), 30)
        if acks.error:
            raise RuntimeError(f"JetStream refused an append while filling: {acks.error}")
        return FillStats(sent, time.perf_counter() - started, acks.last_seq)
    finally:
        ack_task.cancel()
        writer.close()


async def _flush(writer: asyncio.StreamWriter, parts: list[bytes], acks: _Acks, sent: int) -> None:
    writer.write(b"".join(parts))
    parts.clear()
    await writer.drain()
    while sent - acks.count > WINDOW and not acks.error:
        acks.changed.clear()
        await asyncio.wait_for(acks.changed.wait(), 30)
    if acks.error:
        raise RuntimeError(f"JetStream refused an append while filling: {acks.error}")
