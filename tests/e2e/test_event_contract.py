"""The event contract as an outside consumer of the stream sees it, on a real ``bay up``: after a
scale from 0 to 5 and a task kill, every message decodes through ``libs.events``, each aggregate's
versions run 1, 2, 3... with no gap, every event names what caused it, nothing is dated before the
stream began, and the trace of the REST call reaches the TaskLaunched events it caused."""

from __future__ import annotations

from collections import defaultdict
from contextlib import aclosing
from pathlib import Path

from libs.errors import Unavailable
from libs.eventlog.jetstream import JetStreamEventLog
from libs.eventlog.port import Record, StreamSettings
from libs.events import decode
from libs.events import model as m
from libs.natsconn import NatsConnection, connect
from libs.natscreds import NatsCredentials
from tests.e2e.harness import READY, BayUp, running_bay
from tests.poll import poll_until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
SPEC = {
    "name": "contract",
    "cmd": "exec sleep 600",
    "instances": 0,
    "resources": {"cpus": 0.1, "mem": 16},
}


async def ready_count(bay: BayUp, want: int) -> bool:
    async with bay.http() as http:
        status = (await http.get("/v1/groups/contract/status")).json()
    return bool(status.get("ready") == want and status.get("killing", 0) == 0)


async def read_all(nats_url: str, seed: Path) -> tuple[list[Record], float]:
    """Every event, read as an audit system outside Bay would: with an audit credential."""

    async def admitted() -> NatsConnection | None:  # nats-server reloads its users just after the signal
        try:
            return await connect(
                nats_url, name="contract-reader", credentials=NatsCredentials(nkey_seed=seed)
            )
        except Unavailable:
            return None

    conn = await poll_until(admitted, "the audit credential is admitted", 10)
    try:
        log = JetStreamEventLog(conn, StreamSettings("BAY_EVENTS"))
        info = await conn.client.jetstream().stream_info("BAY_EVENTS")
        created = info.created.timestamp() if info.created else 0.0  # type: ignore[attr-defined]
        last = await log.last_sequence()
        out: list[Record] = []
        async with aclosing(log.read(1)) as records:
            async for rec in records:
                out.append(rec)
                if rec.sequence >= last:
                    break
        return out, created
    finally:
        await conn.close()


async def test_the_stream_keeps_its_contract(tmp_path: Path) -> None:
    async with running_bay(tmp_path) as bay:
        nats_url = (await bay.wait_for(READY)).group(3)
        async with bay.http() as http:
            assert (await http.post("/v1/groups", json=SPEC)).status_code == 201
            traced = {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"}
            r = await http.post("/v1/groups/contract/scale", json={"instances": 5}, headers=traced)
            assert r.status_code == 200, r.text
            await poll_until(lambda: ready_count(bay, 5), "5 tasks ready", 30)
            tasks = (await http.get("/v1/groups/contract/tasks")).json()["tasks"]
            victim = tasks[0]["id"]
            assert (await http.post(f"/v1/tasks/{victim}/kill")).status_code == 200

            async def replaced() -> bool:
                listed = (await http.get("/v1/groups/contract/tasks", params={"all": "true"})).json()["tasks"]
                gone = any(t["id"] == victim and t["state"] == "KILLED" for t in listed)
                return gone and await ready_count(bay, 5)

            await poll_until(replaced, "the killed task ended and was replaced", 30)
        code, out, err = await bay.cli("nats", "audit-credential", "contract")
        assert code == 0, err
        records, created = await read_all(nats_url, Path(out.strip()))

    assert created > 0
    events = [decode(rec) for rec in records]  # every message decodes (UndecodableEvent otherwise)
    assert {type(e.data) for e in events} >= {
        m.ClusterRegistered, m.GroupCreated, m.GroupScaled, m.TaskLaunched,
        m.TaskStatusChanged, m.TaskKillRequested,
    }  # fmt: skip

    versions: dict[str, list[int]] = defaultdict(list)
    for e in events:
        versions[e.subject].append(e.envelope.aggregate_version)
    for subject, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{subject}: versions {seen}"

    by_id: dict[str, m.EventData] = {}
    chains: set[str] = set()
    for e in events:
        env = e.envelope
        assert env.correlation_id and env.causation_id, f"{e.subject} #{e.sequence} {env.type}: no ids"
        if env.correlation_id not in chains:  # the first of its chain: caused by the command itself
            chains.add(env.correlation_id)
            assert env.causation_id == env.correlation_id or env.causation_id in by_id
        else:
            assert env.causation_id in by_id, f"{env.type} #{e.sequence} names no earlier event"
        by_id[env.event_id] = e.data
        assert e.at >= created - 1.0, f"{env.type} #{e.sequence} dated before the stream began"

    launches = [e for e in events if isinstance(e.data, m.TaskLaunched)]
    assert len(launches) == 6  # five, then one replacement
    for e in launches:
        assert isinstance(by_id[e.envelope.causation_id], m.GroupScaled)
        assert e.traceparent.split("-")[1] == TRACE_ID, e.traceparent
    (scaled,) = [e for e in events if isinstance(e.data, m.GroupScaled)]
    assert scaled.traceparent.split("-")[1] == TRACE_ID
    (kill,) = [e for e in events if isinstance(e.data, m.TaskKillRequested)]
    assert kill.envelope.actor == "admin"  # an operator's kill is the operator's
    # a command with no trace of its own still starts one: the GroupCreated carries a traceparent
    (group_created,) = [e for e in events if isinstance(e.data, m.GroupCreated)]
    assert len(group_created.traceparent.split("-")) == 4
    for e in events:
        if isinstance(e.data, m.TaskStatusChanged | m.TaskHealthChanged | m.TaskKillRequested):
            assert e.traceparent, f"{e.envelope.type} #{e.sequence} carries no trace"
