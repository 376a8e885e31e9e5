"""``/v1/overview``: clusters, hosts and every group's health in one answer, and its changes live.

The stream (server-sent events) starts with the whole overview (``event: overview``), then sends
only what changed: ``event: groups`` (``{"sequence", "changed": [group...], "removed": [name...]}``)
and ``event: clusters`` (``{"clusters": [...]}``). A client that reconnects gets the whole overview
again, so it never misses a change. It looks again soon after the log moves on (a scale, a task
starting) and every few seconds anyway (what the schedulers know without an event: a backoff).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from libs.clients import SchedulerPool
from services.gateway.backends import Backends
from services.gateway.deps import BackendsDep, Schedulers, SettingsDep, Viewer
from services.gateway.sse import KEEP_ALIVE, RETRY_MS, sse_response
from services.gateway.ui.overview import Overview, OverviewSource

router = APIRouter(prefix="/v1/overview", tags=["overview"])

#: how often the stream looks whether the log moved on
POLL_SECONDS = 0.2
#: after a change, look again this often for a while (the schedulers fold the same events a
#: moment later than the gateway does)
BUSY_SECONDS = 0.5
BUSY_FOR = 3.0
#: with nothing new in the log, look again this often anyway
IDLE_SECONDS = 2.0


def source_of(request: Request) -> OverviewSource:
    source: OverviewSource | None = getattr(request.app.state, "overview", None)
    if source is None:
        backends: Backends = request.app.state.backends
        source = OverviewSource(lambda: (backends.view, backends.live.sequence))
        request.app.state.overview = source
    return source


@router.get("")
async def get_overview(request: Request, _: Viewer, schedulers: Schedulers) -> Overview:
    return await source_of(request).get(schedulers)


def _event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def overview_stream(
    source: OverviewSource,
    schedulers: SchedulerPool,
    backends: Backends,
    *,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    sent: dict[str, str] = {}
    sent_clusters = ""
    first = True
    seen_sequence = -1
    changed_at = 0.0
    last_look = 0.0
    last_sent = time.monotonic()
    while not backends.closing.is_set():
        now = time.monotonic()
        sequence = backends.live.sequence
        if sequence != seen_sequence:
            seen_sequence, changed_at = sequence, now
        every = BUSY_SECONDS if now - changed_at < BUSY_FOR else IDLE_SECONDS
        if first or now - last_look >= every:
            last_look = now
            overview = await source.get(schedulers)
            groups = {g.name: g.model_dump_json() for g in overview.groups}
            clusters = json.dumps([c.model_dump() for c in overview.clusters], sort_keys=True)
            if first:
                first = False
                yield f"event: overview\ndata: {overview.model_dump_json()}\n\n".encode()
                last_sent = now
            else:
                changed = [json.loads(text) for name, text in groups.items() if sent.get(name) != text]
                removed = [name for name in sent if name not in groups]
                if changed or removed:
                    body = {"sequence": overview.sequence, "changed": changed, "removed": removed}
                    yield _event("groups", body)
                    last_sent = now
                if clusters != sent_clusters:
                    yield _event("clusters", {"clusters": json.loads(clusters)})
                    last_sent = now
            sent, sent_clusters = groups, clusters
        if now - last_sent >= heartbeat:
            yield KEEP_ALIVE
            last_sent = now
        try:
            await asyncio.wait_for(backends.closing.wait(), POLL_SECONDS)
        except TimeoutError:
            pass


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream_overview(
    request: Request, _: Viewer, schedulers: Schedulers, backends: BackendsDep, settings: SettingsDep
) -> StreamingResponse:
    """The whole overview first, then its changes as they happen."""
    heartbeat = settings.sse_heartbeat_seconds
    return sse_response(overview_stream(source_of(request), schedulers, backends, heartbeat=heartbeat))
