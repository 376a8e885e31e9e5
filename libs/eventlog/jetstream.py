"""The event log on NATS JetStream.

- append: ``Nats-Expected-Last-Subject-Sequence`` for optimistic concurrency and ``Nats-Msg-Id`` =
  event id for idempotency; W3C trace context goes into the headers. An event that would not fit in
  one NATS message with its headers (the server's ``max_payload``) is refused before it is sent
  (:class:`~libs.errors.TooLarge`): sent, the server would drop the whole connection.
- read: catch-up through :mod:`libs.eventlog.bulkread` (a bulk frame reader, ~4x nats-py's per
  message path), then live follow through a nats-py ordered consumer that is recreated from the last
  delivered sequence after every reconnect, so a follower never skips or repeats an event.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import nats.errors
import nats.js.errors
from bay.v1 import envelope_pb2
from nats.aio.msg import Msg
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from opentelemetry import propagate, trace

from libs.errors import BayError, Conflict, TooLarge, Unavailable
from libs.eventlog.bulkread import bulk_read
from libs.eventlog.port import AppendResult, EventLog, Record, StreamSettings, message_size, too_large
from libs.metrics import PROCESS
from libs.natsconn import NatsConnection
from libs.settings import CommonSettings

log = logging.getLogger("bay.eventlog")
tracer = trace.get_tracer("bay.eventlog")

WRONG_LAST_SEQUENCE = 10071  # JetStream API error code
_NOT_SENT = "nothing was sent to NATS: retry with the same idempotency key once it is back"


def event_log_for(conn: NatsConnection, settings: CommonSettings) -> JetStreamEventLog:
    """The event log as every service configures it, from its settings."""
    stream = StreamSettings(
        settings.stream,
        replicas=settings.stream_replicas,
        duplicate_window_seconds=settings.duplicate_window_seconds,
    )
    return JetStreamEventLog(conn, stream, timeout=settings.request_timeout_seconds)


class JetStreamEventLog(EventLog):
    def __init__(self, conn: NatsConnection, stream: StreamSettings, *, timeout: float = 2.0) -> None:
        self.conn = conn
        self.js = conn.client.jetstream(timeout=timeout)
        self.stream = stream
        self.timeout = timeout
        # pipelined appends (append_batch): one reply subscription, acks matched by token
        self._ack_prefix = f"_BAY_ACK.{uuid.uuid4().hex}."
        self._ack_sub: Any = None
        self._acks: dict[str, asyncio.Future[AppendResult | BayError]] = {}
        self._ack_tokens = itertools.count()

    async def append_batch(
        self,
        items: Sequence[tuple[str, envelope_pb2.Envelope]],
        headers: Sequence[Mapping[str, str] | None] | None = None,
    ) -> list[AppendResult | BayError]:
        """Publish every event at once (on one connection, so JetStream stores them in this order),
        then wait for all acknowledgements together: thousands a second instead of one round trip
        each. No expected-sequence check: for a subject's single writer. An event's own headers
        (its trace context) are sent with it; else the caller's trace context when it is in one."""
        if not items:
            return []
        client = self.conn.client
        if not self.conn.connected:
            return [
                Unavailable("NATS is not connected (reconnecting); nothing was written", hint=_NOT_SENT)
            ] * len(items)
        if self._ack_sub is None:
            self._ack_sub = await client.subscribe(self._ack_prefix + "*", cb=self._on_ack)
        loop = asyncio.get_running_loop()
        traced = trace.get_current_span().get_span_context().is_valid
        began = time.perf_counter()
        waiting: list[tuple[str, asyncio.Future[AppendResult | BayError]]] = []
        try:
            for i, (subject, envelope) in enumerate(items):
                token = str(next(self._ack_tokens))
                fut: asyncio.Future[AppendResult | BayError] = loop.create_future()
                self._acks[token] = fut
                waiting.append((token, fut))
                hdrs = {"Nats-Msg-Id": envelope.event_id}
                own = headers[i] if headers is not None else None
                if own:
                    hdrs.update(own)
                elif traced:
                    propagate.inject(hdrs)
                payload = envelope.SerializeToString()
                too_large = self._too_large(subject, payload, hdrs)
                if too_large is not None:
                    fut.set_result(too_large)
                    continue
                await client.publish(subject, payload, reply=self._ack_prefix + token, headers=hdrs)
        except (nats.errors.OutboundBufferLimitError, nats.errors.ConnectionClosedError):
            for _, fut in waiting:
                if not fut.done():
                    fut.set_result(Unavailable("NATS is not connected; this event may not be stored"))
        if waiting:
            await asyncio.wait([f for _, f in waiting], timeout=self.timeout)
        PROCESS.observe_append(time.perf_counter() - began)
        out: list[AppendResult | BayError] = []
        for token, fut in waiting:
            self._acks.pop(token, None)
            if fut.done():
                out.append(fut.result())
            else:
                fut.cancel()
                out.append(Unavailable("JetStream did not acknowledge the append in time; retry it"))
        out.extend(Unavailable("not sent") for _ in range(len(items) - len(out)))
        return out

    @property
    def max_message_bytes(self) -> int:
        """The largest message the server takes, headers included (its INFO's ``max_payload``)."""
        return int(self.conn.client.max_payload)

    def _too_large(self, subject: str, payload: bytes, headers: Mapping[str, str]) -> TooLarge | None:
        size, limit = message_size(payload, headers), self.max_message_bytes
        return too_large(subject, size, limit) if size > limit else None

    async def _on_ack(self, msg: Msg) -> None:
        fut = self._acks.get(msg.subject[len(self._ack_prefix) :])
        if fut is None or fut.done():
            return
        if not msg.data and msg.headers and msg.headers.get("Status") == "503":
            fut.set_result(Unavailable("no JetStream server took the append (a leader election?)"))
            return
        try:
            answer = json.loads(msg.data)
        except ValueError:
            fut.set_result(Unavailable("JetStream answered the append with something not JSON"))
            return
        if "error" in answer:
            description = answer["error"].get("description", "error")
            fut.set_result(Unavailable(f"JetStream refused the append: {description}"))
        else:
            fut.set_result(AppendResult(int(answer["seq"]), bool(answer.get("duplicate", False))))

    async def ensure_stream(self) -> None:
        """Create the stream, append-only: deny delete and purge, file storage, no limits."""
        cfg = StreamConfig(
            name=self.stream.name,
            subjects=list(self.stream.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.stream.replicas,
            duplicate_window=self.stream.duplicate_window_seconds,
            discard=DiscardPolicy.NEW,
            deny_delete=True,
            deny_purge=True,
            allow_direct=True,
        )
        try:
            await self.js.add_stream(cfg)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != 10058:  # stream name already in use with a different configuration
                raise
            await self.js.update_stream(cfg)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise Unavailable(f"JetStream did not answer creating stream {self.stream.name}") from exc

    async def stream_exists(self) -> bool:
        """Whether the stream is there (what a service checks: only the set-up creates it)."""
        try:
            await self.js.stream_info(self.stream.name)
            return True
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.ServiceUnavailableError as exc:
            raise Unavailable(f"JetStream is not ready: {exc.description}") from exc
        except (
            nats.errors.TimeoutError,
            nats.errors.NoRespondersError,
            nats.errors.ConnectionClosedError,
        ) as exc:
            raise Unavailable(f"JetStream did not answer about stream {self.stream.name}") from exc

    async def append(
        self,
        subject: str,
        envelope: envelope_pb2.Envelope,
        *,
        expected_last_seq: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AppendResult:
        if not self.conn.connected:
            raise Unavailable("NATS is not connected (reconnecting); nothing was written", hint=_NOT_SENT)
        hdrs: dict[str, str] = {"Nats-Msg-Id": envelope.event_id}
        if expected_last_seq is not None:
            hdrs["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
        if headers:
            hdrs.update(headers)
        with tracer.start_as_current_span(
            "eventlog.append",
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.destination.name": subject, "bay.event.type": envelope.type},
        ):
            propagate.inject(hdrs)
            payload = envelope.SerializeToString()
            too_large = self._too_large(subject, payload, hdrs)
            if too_large is not None:
                raise too_large
            began = time.perf_counter()
            try:
                ack = await self.js.publish(subject, payload, timeout=self.timeout, headers=hdrs)
            except nats.js.errors.APIError as exc:
                if exc.err_code == WRONG_LAST_SEQUENCE:
                    stored = await self._already_stored(subject, envelope.event_id, expected_last_seq or 0)
                    if stored:
                        return AppendResult(stored, duplicate=True)
                    raise Conflict(
                        f"{subject} changed since it was read (expected last sequence {expected_last_seq})"
                    ) from exc
                raise Unavailable(f"JetStream refused the append: {exc.description}") from exc
            except (nats.errors.OutboundBufferLimitError, nats.errors.ConnectionClosedError) as exc:
                raise Unavailable("NATS is not connected; nothing was written", hint=_NOT_SENT) from exc
            except nats.js.errors.NoStreamResponseError as exc:
                # no server took the message (a clustered stream electing its leader, say)
                raise Unavailable(
                    "no JetStream server took the append (is the stream electing a leader?)",
                    hint="retry with the same idempotency key",
                ) from exc
            except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
                raise Unavailable(
                    "JetStream did not acknowledge the append in time: it may or may not be stored",
                    hint="the command may or may not have been carried out: retry with the same "
                    "idempotency key, which answers with its first result if it was",
                ) from exc
            finally:
                PROCESS.observe_append(time.perf_counter() - began)
        return AppendResult(ack.seq, bool(ack.duplicate))

    async def _already_stored(self, subject: str, event_id: str, after: int) -> int:
        """The sequence of ``event_id`` on ``subject`` after ``after``, or 0.

        JetStream checks the expected subject sequence before the Nats-Msg-Id dedupe, so a retry
        of an append that did land (its acknowledgement was lost) comes back as a conflict; this
        tells such a retry from a real concurrent writer.
        """
        async with aclosing(self.read_batches(after + 1, subject_filter=subject)) as batches:
            async for batch in batches:
                for rec in batch:
                    if rec.envelope.event_id == event_id:
                        return rec.sequence
        return 0

    async def last_sequence(self, subject_filter: str | None = None) -> int:
        if not self.conn.connected:
            raise Unavailable("NATS is not connected (reconnecting)")
        try:
            if subject_filter is None:
                info = await self.js.stream_info(self.stream.name)
                return int(info.state.last_seq)
            try:
                msg = await self.js.get_last_msg(self.stream.name, subject_filter)
            except nats.js.errors.NotFoundError:
                return 0
            return int(msg.seq or 0)
        except (
            nats.errors.TimeoutError,
            nats.errors.NoRespondersError,
            nats.errors.OutboundBufferLimitError,
            nats.errors.ConnectionClosedError,
        ) as exc:
            raise Unavailable("JetStream did not answer") from exc

    async def stream_identity(self) -> str:
        """The stream's name and creation time: a stream deleted and created again is another."""
        if not self.conn.connected:
            raise Unavailable("NATS is not connected (reconnecting)")
        try:
            info = await self.js.stream_info(self.stream.name)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise Unavailable("JetStream did not answer") from exc
        return f"{self.stream.name} {info.created.isoformat()}" if info.created else ""

    async def read_batches(
        self, from_seq: int = 1, *, subject_filter: str | None = None, follow: bool = False
    ) -> AsyncGenerator[list[Record], None]:
        last = max(from_seq, 1) - 1
        async for batch in bulk_read(self.conn, self.js, self.stream.name, last + 1, subject_filter):
            last = batch[-1].sequence
            yield batch
        if not follow:
            return
        async for live in self._follow(last + 1, subject_filter):
            yield live

    async def read_subjects(
        self, subject_filters: Sequence[str], *, until_seq: int | None = None
    ) -> AsyncGenerator[list[Record], None]:
        """One consumer filtered on the server on every subject at once (a group, its tasks, its
        deployments): reading a group's history costs its own events, not the whole log's. JetStream
        has no end sequence: the read stops at the first event past ``until_seq``."""
        if not subject_filters:
            return
        filters = list(subject_filters)
        async with aclosing(
            bulk_read(self.conn, self.js, self.stream.name, 1, None, subject_filters=filters)
        ) as batches:
            async for batch in batches:
                if until_seq is not None and batch[-1].sequence > until_seq:
                    kept = [rec for rec in batch if rec.sequence <= until_seq]
                    if kept:
                        yield kept
                    return
                yield batch

    async def _follow(self, from_seq: int, subject_filter: str | None) -> AsyncIterator[list[Record]]:
        """Live events from ``from_seq``, in batches of what has arrived; survives reconnects and
        server restarts. (One wake-up per batch, not per event: a busy writer's events come in
        bursts.)

        After every reconnect the ordered consumer is made anew from the next sequence (the
        server may have lost an ephemeral consumer), so nothing is skipped and nothing repeated.
        """
        nxt = from_seq
        reset = asyncio.Event()
        queue: asyncio.Queue[Record] = asyncio.Queue()

        async def on_reconnect() -> None:
            reset.set()

        async def cb(msg: Msg) -> None:
            md = msg.metadata
            env = envelope_pb2.Envelope.FromString(msg.data)
            await queue.put(Record(md.sequence.stream, msg.subject, env, dict(msg.headers or {})))

        self.conn.on_reconnect(on_reconnect)
        try:
            while True:
                reset.clear()
                try:
                    sub = await self.js.subscribe(
                        subject_filter or self.stream.subjects[0],
                        stream=self.stream.name,
                        cb=cb,
                        ordered_consumer=True,
                        config=ConsumerConfig(
                            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=nxt
                        ),
                        pending_msgs_limit=-1,
                        pending_bytes_limit=-1,
                    )
                except Exception as exc:  # NATS down: wait for the reconnect signal (or 1 s), retry
                    log.debug("follow: subscribe failed (%s); waiting for reconnect", exc)
                    await _first_of(reset.wait(), timeout=1.0)
                    continue
                try:
                    while True:
                        rec = await _first_of(queue.get(), reset.wait())
                        if not isinstance(rec, Record):
                            break  # reconnected: resubscribe from nxt
                        batch = []
                        while True:
                            if rec.sequence >= nxt:
                                nxt = rec.sequence + 1
                                batch.append(rec)
                            if queue.empty() or reset.is_set():
                                break
                            rec = queue.get_nowait()
                        if batch:
                            yield batch
                finally:
                    try:  # bounded: a follower being stopped must not wait on a dead connection
                        await asyncio.wait_for(sub.unsubscribe(), 2.0)
                    except Exception:
                        pass
                    while not queue.empty():  # stale copies; the new consumer resends from nxt
                        queue.get_nowait()
        finally:
            self.conn.remove_on_reconnect(on_reconnect)


async def _first_of(*aws: Awaitable[Any], timeout: float | None = None) -> Any:
    """The result of whichever awaitable finishes first (None on timeout); the others are cancelled.
    Unlike ``asyncio.wait_for`` on 3.11, a cancellation of the caller is never lost here."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            if t in done:
                return t.result()
        return None
    finally:
        for t in tasks:
            t.cancel()


async def ensure_stream_when_ready(event_log: JetStreamEventLog, wait_seconds: float = 60.0) -> None:
    """A clustered JetStream may answer before it has a leader: keep asking for a while."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            await event_log.ensure_stream()
            return
        except Unavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("JetStream not ready yet; retrying")
            await asyncio.sleep(1.0)


async def wait_for_stream(event_log: JetStreamEventLog, wait_seconds: float = 60.0) -> None:
    """Until the stream exists. Services never create it (their NATS users may not: see
    :mod:`libs.natsperms`); the set-up does (``bay up``, ``bay nats setup``). Missing after
    ``wait_seconds``: Unavailable, and the process exits for its supervisor to start it again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    said = -1e9
    name = event_log.stream.name
    while True:
        try:
            if await event_log.stream_exists():
                return
            why = f"stream {name} does not exist: the set-up creates it (`bay up`, or `bay nats setup`)"
        except Unavailable as exc:
            why = exc.message
        if loop.time() > deadline:
            raise Unavailable(why, hint="run `bay nats setup` with the set-up credential, then start this")
        if loop.time() - said >= 10.0:
            said = loop.time()
            log.warning("%s; waiting", why)
        await asyncio.sleep(0.5)
