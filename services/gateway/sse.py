"""Server-sent events from the event log (and a group's status, from its scheduler).

Each event is ``id: <stream sequence>``, ``event: <type>``, ``data: <libs.eventjson rendering>``, so a
browser's EventSource (or ``bay events --follow``) that reconnects sends ``Last-Event-ID`` and
resumes exactly after the last event it saw. A comment line (``: keep-alive``) goes out after every
quiet interval, so proxies and clients can tell an idle stream from a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TypeVar

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from libs.errors import BayError
from libs.eventjson import record_dict
from libs.eventlog import EventLog, Record

log = logging.getLogger("bay.gateway.sse")

KEEP_ALIVE = b": keep-alive\n\n"
RETRY_MS = 2000

T = TypeVar("T")


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    """A stream of server-sent events, kept out of caches and proxy buffers."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def opening(start: int) -> bytes:
    """The first bytes of a stream: the reconnect delay, and where it starts (a comment)."""
    return f"retry: {RETRY_MS}\n: from sequence {start}\n\n".encode()


def message(rec: Record) -> bytes:
    data = json.dumps(record_dict(rec), separators=(",", ":"))  # one line: newlines are escaped
    return f"id: {rec.sequence}\nevent: {rec.envelope.type}\ndata: {data}\n\n".encode()


async def with_heartbeat(
    source: AsyncIterator[T], interval: float, stop: asyncio.Event
) -> AsyncIterator[T | None]:
    """The items of ``source``, and ``None`` after each ``interval`` without one; ends on ``stop``."""
    queue: asyncio.Queue[T] = asyncio.Queue(maxsize=256)

    async def pump() -> None:
        async for item in source:
            await queue.put(item)

    pumping = asyncio.create_task(pump())
    stopping = asyncio.create_task(stop.wait())
    getter: asyncio.Future[T] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, pumping, stopping}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:
                yield getter.result()
                continue
            getter.cancel()  # an item put meanwhile stays in the queue for the next round
            if stopping in done:
                return
            if pumping in done:
                while not queue.empty():  # a finite source ended: what it put before is still due
                    yield queue.get_nowait()
                pumping.result()  # the source's error, if it failed
                return
            yield None
    finally:
        tasks = [t for t in (getter, pumping, stopping) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def event_stream(
    log_: EventLog, start: int, subject_filter: str | None, *, heartbeat: float, stop: asyncio.Event
) -> AsyncIterator[bytes]:
    """The body of ``GET /v1/events/stream``: events from ``start`` on, then live, until ``stop``."""
    yield opening(start)
    records = log_.read(start, subject_filter=subject_filter, follow=True)
    try:
        async for rec in with_heartbeat(records, heartbeat, stop):
            yield KEEP_ALIVE if rec is None else message(rec)
    except Exception:  # headers are gone: all that can be done is end the stream; the client resumes
        log.exception("event stream from sequence %d failed", start)


async def model_stream(
    items: AsyncIterator[BaseModel], event: str, *, heartbeat: float, stop: asyncio.Event
) -> AsyncIterator[bytes]:
    """``event: <event>`` / ``data: <item as JSON>`` for each item, keep-alives between, until the
    source ends (its error ends the stream too: a client reconnects, and reads the state anew)."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    try:
        async for item in with_heartbeat(items, heartbeat, stop):
            yield (
                KEEP_ALIVE if item is None else f"event: {event}\ndata: {item.model_dump_json()}\n\n".encode()
            )
    except BayError as exc:
        log.warning("%s stream ended: %s", event, exc.message)
