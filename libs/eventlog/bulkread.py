"""Catch-up reads at bulk speed.

nats-py turns every message into a ``Msg`` and passes it through an ``asyncio.Queue``; that caps a
replay near 100,000 messages/s on this hardware before any decoding. Catch-up does not need that
machinery: this module opens its own plain connection, points an ephemeral push consumer (no acks,
flow control on) at it and cuts frames out of large reads. Each JetStream ack subject already carries
the stream sequence and the number of messages still pending, so the reader knows when it has caught
up without asking the server. Where the connection needs TLS it falls back to nats-py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence

from bay.v1 import envelope_pb2
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from libs.errors import Unavailable
from libs.eventlog.port import Record
from libs.events.subjects import matches
from libs.natsconn import NatsConnection

READ_SIZE = 1 << 20
HEARTBEAT = 5.0
IDLE_LIMIT = 3 * HEARTBEAT  # heartbeats stopped: the consumer is gone; the caller retries
_STALLED = b"Nats-Consumer-Stalled:"


def _stalled_reply(headers: bytes) -> bytes:
    """The flow-control subject a stalled-consumer heartbeat asks us to answer, if any."""
    at = headers.find(_STALLED)
    if at < 0:
        return b""
    end = headers.find(b"\r\n", at)
    return headers[at + len(_STALLED) : end if end >= 0 else None].strip()


class LazyHeaders(Mapping[str, str]):
    """NATS headers parsed on first use (most replayed events never need them)."""

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._parsed: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._parsed is None:
            parsed: dict[str, str] = {}
            for line in self._raw.split(b"\r\n")[1:]:
                key, sep, value = line.partition(b":")
                if sep:
                    parsed[key.decode().strip()] = value.decode().strip()
            self._parsed = parsed
        return self._parsed

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


async def bulk_read(
    conn: NatsConnection,
    js: JetStreamContext,
    stream: str,
    from_seq: int,
    subject_filter: str | None,
    *,
    subject_filters: Sequence[str] = (),
) -> AsyncGenerator[list[Record], None]:
    """Every stored event from ``from_seq`` (matching the filter, or any of ``subject_filters``:
    one consumer filtered on several subjects, nats-server 2.10 and later) up to the end as of now."""
    if subject_filters and subject_filter is not None:
        raise ValueError("bulk_read: subject_filter or subject_filters, not both")
    url = conn.client.connected_url
    if url is None or not conn.connected:
        raise Unavailable("NATS is not connected")
    if url.scheme == "tls":
        async for rec in _fallback_read(js, stream, from_seq, subject_filter, subject_filters):
            yield [rec]
        return
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(url.hostname, url.port or 4222, limit=READ_SIZE * 4), timeout=5
        )
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"cannot open a replay connection to NATS: {exc}") from exc
    deliver = f"_BAY_REPLAY.{uuid.uuid4().hex}"
    try:
        info = json.loads((await reader.readline())[5:])
        if info.get("tls_required"):
            writer.close()
            async for rec in _fallback_read(js, stream, from_seq, subject_filter, subject_filters):
                yield [rec]
            return
        opts: dict[str, object] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "echo": False,
            "name": "bay-replay",
        }
        if url.username:
            opts.update({"user": url.username, "pass": url.password or ""})
        try:
            opts.update(conn.credentials.connect_fields(info.get("nonce")))
        except (OSError, ValueError) as exc:
            raise Unavailable(
                f"cannot read the NATS credentials ({conn.credentials.describe()}): {exc}"
            ) from exc
        writer.write(
            b"CONNECT " + json.dumps(opts).encode() + b"\r\nSUB " + deliver.encode() + b" 1\r\nPING\r\n"
        )
        await writer.drain()
        while (line := await reader.readline()) != b"PONG\r\n":
            if not line or line.startswith(b"-ERR"):
                raise Unavailable(f"NATS refused the replay connection: {line!r}")
        ci = await js.add_consumer(
            stream,
            ConsumerConfig(
                deliver_subject=deliver,
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=max(from_seq, 1),
                filter_subject=subject_filter,
                filter_subjects=list(subject_filters) or None,
                flow_control=True,
                idle_heartbeat=HEARTBEAT,
                mem_storage=True,
                inactive_threshold=30.0,
                max_ack_pending=-1,
            ),
        )
        if not ci.num_pending:
            return
        async for batch, pending in _frames(reader, writer):
            yield batch
            if pending == 0:
                return
    finally:
        writer.close()


async def _frames(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> AsyncIterator[tuple[list[Record], int]]:
    """Batches of records cut from each read, with the number still pending after the last."""
    buf = b""
    pos = 0
    parse = envelope_pb2.Envelope.FromString
    subjects: dict[bytes, str] = {}  # a replay sees the same aggregate subjects again and again
    seq_at = pending_at = -1  # where the ack subject holds them: fixed for a whole consumer
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(READ_SIZE), IDLE_LIMIT)
        except TimeoutError:
            raise Unavailable(f"replay stalled: nothing from NATS for {IDLE_LIMIT:.0f}s") from None
        if not chunk:
            raise Unavailable("NATS closed the replay connection")
        buf = buf[pos:] + chunk if pos < len(buf) else chunk
        pos = 0
        out: list[Record] = []
        append = out.append
        last_reply = b""
        find = buf.find
        startswith = buf.startswith
        size = len(buf)
        while True:
            eol = find(b"\r\n", pos)
            if eol < 0:
                break
            headed = startswith(b"HMSG", pos)
            if headed or startswith(b"MSG", pos):
                parts = buf[pos:eol].split(b" ")
                total = int(parts[-1])
                end = eol + 4 + total
                if end > size:
                    break
                hlen = int(parts[-2]) if headed else 0
                body = eol + 2
                reply = parts[3] if len(parts) == (6 if headed else 5) else b""
                if reply.startswith(b"$JS.ACK."):
                    if seq_at < 0:
                        # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> (v1),
                        # or with <domain>.<account hash> after ACK and a random token at the end (v2)
                        v1 = reply.count(b".") == 8
                        seq_at, pending_at = (5, 8) if v1 else (7, 10)
                    subject = subjects.get(parts[1])
                    if subject is None:
                        subject = subjects[parts[1]] = parts[1].decode()
                    append(
                        Record(
                            int(reply.split(b".", seq_at + 1)[seq_at]),
                            subject,
                            parse(buf[body + hlen : body + total]),
                            LazyHeaders(buf[body : body + hlen]),
                        )
                    )
                    last_reply = reply
                elif reply:  # flow control request: answering it lets the server send more
                    writer.write(b"PUB " + reply + b" 0\r\n\r\n")
                elif headed:  # idle heartbeat; one naming a stalled consumer wants the FC answer
                    stalled = _stalled_reply(buf[body : body + hlen])
                    if stalled:
                        writer.write(b"PUB " + stalled + b" 0\r\n\r\n")
                pos = end
            elif startswith(b"PING", pos):
                writer.write(b"PONG\r\n")
                pos = eol + 2
            elif startswith(b"-ERR", pos):
                raise Unavailable(f"NATS error during replay: {buf[pos:eol]!r}")
            else:  # +OK, PONG, INFO
                pos = eol + 2
        if out:
            yield out, int(last_reply.split(b".")[pending_at])


async def _fallback_read(
    js: JetStreamContext,
    stream: str,
    from_seq: int,
    subject_filter: str | None,
    subject_filters: Sequence[str] = (),
) -> AsyncIterator[Record]:
    sub = await js.subscribe(
        subject_filter or ">",
        stream=stream,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(from_seq, 1)),
    )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except TimeoutError:
                return
            md = msg.metadata
            if subject_filters and not any(matches(f, msg.subject) for f in subject_filters):
                if md.num_pending == 0:
                    return
                continue  # nats-py's subscribe takes one subject: several are filtered here
            yield Record(
                md.sequence.stream,
                msg.subject,
                envelope_pb2.Envelope.FromString(msg.data),
                dict(msg.headers or {}),
            )
            if md.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()
