"""One trace across the hops: REST call -> gateway -> registry gRPC -> append -> audit consumer.

Everything runs in this process (so one in-memory exporter sees every span) over real sockets:
real NATS, the registry's real gRPC port, the gateway app, the audit writer on SQLite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.natsconn import connect
from libs.telemetry import setup_telemetry
from services.gateway.audit.db import init_db, make_engine
from services.gateway.audit.sqlstore import SqlAuditStore
from services.gateway.audit.writer import AuditWriter
from tests import natsauth
from tests.integration.gateway_harness import bearer, start_gateway
from tests.integration.registry_harness import start_registry

EXPORTER = InMemorySpanExporter()


def spans_named(spans: list[ReadableSpan], needle: str) -> list[ReadableSpan]:
    return [s for s in spans if needle in s.name]


async def test_rest_call_to_audit_write_is_one_trace(fresh_stream: str, tmp_path: Path) -> None:
    setup_telemetry("bay-test", processor=SimpleSpanProcessor(EXPORTER))
    reg = await start_registry(fresh_stream, tmp_path)
    gw = await start_gateway(fresh_stream, tmp_path, reg.port)
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    init_db(engine)
    audit = await connect(fresh_stream, name="test-audit", credentials=natsauth.credentials("audit"))
    writer = AuditWriter(audit, SqlAuditStore(engine, "bay-audit"), fetch_timeout=0.5)
    stop = asyncio.Event()
    writer_task = asyncio.create_task(writer.run(stop))
    progress = await nats.connect(fresh_stream)
    positions: asyncio.Queue[int] = asyncio.Queue()

    async def on_progress(msg: nats.aio.msg.Msg) -> None:
        await positions.put(int(msg.data))

    await progress.subscribe("bay.audit.progress", cb=on_progress)
    try:
        r = await gw.client.post(
            "/v1/clusters", json={"name": "local", "backend": "local"}, headers=bearer(reg.token)
        )
        assert r.status_code in (200, 201), r.text
        EXPORTER.clear()
        r = await gw.client.post(
            "/v1/groups", json={"name": "web", "cmd": "run", "cluster": "local"}, headers=bearer(reg.token)
        )
        assert r.status_code == 201, r.text
        sequence = r.json()["sequence"]

        async def audited() -> None:
            while await positions.get() < sequence:
                pass

        await asyncio.wait_for(audited(), 10)
    finally:
        stop.set()
        await asyncio.wait_for(writer_task, 10)
        await progress.close()
        await gw.stop()
        await reg.stop()
        await audit.close()
        engine.dispose()

    spans = list(EXPORTER.get_finished_spans())
    rest = [s for s in spans if s.kind == SpanKind.SERVER and "/v1/groups" in s.name]
    grpc_server = [s for s in spans if s.kind == SpanKind.SERVER and "CreateGroup" in s.name]
    append = spans_named(spans, "eventlog.append")
    audit = spans_named(spans, "audit.write")
    assert rest and grpc_server and append and audit, [s.name for s in spans]
    trace_id = rest[0].context.trace_id
    for span in (grpc_server[0], append[0]):
        assert span.context.trace_id == trace_id, span.name
    # the audit span of this event continues the same trace, as a child of the append
    assert any(a.context.trace_id == trace_id and a.parent is not None for a in audit)
    by_id = {s.context.span_id: s for s in spans}
    chain = next(a for a in audit if a.context.trace_id == trace_id)
    names = []
    node: ReadableSpan | None = chain
    while node is not None:
        names.append(node.name)
        node = by_id.get(node.parent.span_id) if node.parent else None
    assert names[0] == "audit.write" and "eventlog.append" in names and names[-1] == rest[0].name
