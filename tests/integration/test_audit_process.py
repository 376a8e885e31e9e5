"""``python -m services.gateway.audit`` as its own process: writes the stream, continues traces."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bay.v1 import group_pb2
from sqlmodel import Session

from libs.eventlog import StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import EventMeta, make_envelope
from libs.events.subjects import subject_for
from libs.natsconn import connect
from services.gateway.audit.db import make_engine
from services.gateway.audit.query import query_events
from services.gateway.audit.writer import PROGRESS_SUBJECT
from tests import natsauth

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


def spans(console_output: str) -> list[dict[str, Any]]:
    """The spans OpenTelemetry's console exporter printed (JSON objects one after another)."""
    decoder = json.JSONDecoder()
    found, pos = [], 0
    while (start := console_output.find("{", pos)) >= 0:
        obj, pos = decoder.raw_decode(console_output, start)
        found.append(obj)
    return found


async def test_the_audit_process_writes_events_and_continues_their_trace(
    fresh_stream: str, tmp_path: Path
) -> None:
    conn = await connect(fresh_stream, name="audit-process-test")
    log = JetStreamEventLog(conn, StreamSettings())
    await log.ensure_stream()
    progress: asyncio.Queue[int] = asyncio.Queue()

    async def on_progress(msg: Any) -> None:
        await progress.put(int(msg.data))

    await conn.client.subscribe(PROGRESS_SUBJECT, cb=on_progress)
    await conn.client.flush()
    for i in range(1, 4):
        env = make_envelope(
            group_pb2.GroupScaled(instances=i, previous=i - 1, reason="test"),
            aggregate_type="group",
            aggregate_id="web",
            aggregate_version=i,
            meta=EventMeta(actor="ops"),
        )
        # the third event arrives as a REST call's trace would: a W3C traceparent in its headers
        headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"} if i == 3 else {}
        await conn.client.jetstream().publish(
            subject_for("group", "web"),
            env.SerializeToString(),
            headers={"Nats-Msg-Id": env.event_id, **headers},
        )

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BAY_", "OTEL_"))}
    environ.update(
        BAY_NATS_URL=fresh_stream, BAY_DATA_DIR=str(tmp_path / "data"), OTEL_TRACES_EXPORTER="console"
    )
    environ.update(natsauth.env("audit"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway.audit",
        cwd=ROOT,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def reached(seq: int) -> None:
            while await progress.get() < seq:
                pass

        await asyncio.wait_for(reached(3), DEADLINE)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
        await conn.close()
    assert proc.returncode == 0, err.decode()
    assert b"audit writer stopped at sequence 3" in err

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'bay.db'}")  # the default database
    with Session(engine) as session:
        rows = query_events(session)
    engine.dispose()
    assert [(r["sequence"], r["type"], r["data"]["instances"]) for r in rows] == [
        (1, "GroupScaled", 1),
        (2, "GroupScaled", 2),
        (3, "GroupScaled", 3),
    ]

    writes = [s for s in spans(out.decode()) if s.get("name") == "audit.write"]
    assert len(writes) == 3
    traced = [s for s in writes if s["context"]["trace_id"] == f"0x{TRACE_ID}"]
    assert len(traced) == 1 and traced[0]["parent_id"] == f"0x{PARENT_SPAN_ID}"
    assert traced[0]["attributes"]["bay.event.sequence"] == "3"
