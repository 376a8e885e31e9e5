"""A new reader's live view over a real JetStream log: replayed on open, then followed."""

from __future__ import annotations

from libs.eventlog.jetstream import JetStreamEventLog
from libs.eventlog.port import StreamSettings
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.natsconn import connect
from libs.spec import validate_spec
from libs.views import open_view


async def test_open_view_replays_then_follows(fresh_stream: str) -> None:
    conn = await connect(fresh_stream, name="views-test")
    log = JetStreamEventLog(conn, StreamSettings())
    await log.ensure_stream()
    meta = EventMeta.command("test")

    async def append(subject: str, data: m.EventData, kind: str, ident: str, version: int) -> int:
        env = make_envelope(
            to_pb(data), aggregate_type=kind, aggregate_id=ident, aggregate_version=version, meta=meta
        )
        return (await log.append(subject, env)).sequence

    try:
        spec = validate_spec({"name": "web", "cmd": "x", "instances": 1})
        await append(subjects.group("web"), m.GroupCreated(spec, 1), "group", "web", 1)
        projection = await open_view(log, "views-test")
        try:
            assert projection.state.live_group("web") is not None
            launched = m.TaskLaunched(
                "web.1", "web", 1, "h", "h", {}, 0.1, 16, 0, 1.0, {}, "local", "10.0.0.1"
            )
            await append(subjects.task("local", "web.1"), launched, "task", "web.1", 1)
            running = m.TaskStatusChanged("web.1", m.TaskState.RUNNING, 2.0)
            seq = await append(subjects.task("local", "web.1"), running, "task", "web.1", 2)
            await projection.wait_for(seq, timeout=10)
            assert [t.id for t in projection.state.ready_tasks("web")] == ["web.1"]
        finally:
            await projection.stop(snapshot=False)
    finally:
        await conn.close()
