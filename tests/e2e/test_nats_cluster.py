"""Bay on the production shape of its log: a real three-node NATS cluster, the stream at three
replicas. Under a load of scale commands (each with its own idempotency key, retried with it until
acknowledged), the stream's leader node is SIGKILLed; once it is back and caught up, another node is.
No acknowledged command is lost or doubled, every service carries on by itself (none restarted), the
scheduler still runs what the log asks, and the audit table is the stream, event for event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import nats.errors
import pytest_asyncio

from libs.lease import BUCKET
from libs.natsusers import NatsUsers
from tests.e2e.harness import BAY, BayUp, clean_environment, running_bay
from tests.e2e.traffic import Traffic, check_history, send_scales, wait_acks
from tests.natscluster import NatsCluster, Node
from tests.poll import poll_until

STREAM = "BAY_EVENTS"
GROUP = "e2e-cluster"


async def stream_events(urls: list[str], options: dict[str, object]) -> list[tuple[int, str]]:
    """(sequence, event id) of every message in the stream, read from NATS itself."""
    from bay.v1 import envelope_pb2

    nc = await nats.connect(servers=urls, **options)  # type: ignore[arg-type]
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq
        out = []
        for seq in range(1, last + 1):
            msg = await js.get_msg(STREAM, seq)
            env = envelope_pb2.Envelope()
            env.ParseFromString(msg.data or b"")
            out.append((seq, env.event_id))
        return out
    finally:
        await nc.close()


async def audit_events(http: httpx.AsyncClient, through: int) -> list[tuple[int, str]]:
    """(sequence, event id) of every event the audit table holds up to ``through``, once it holds
    that one (the scheduler may have stored more since the stream was read: those are cut off)."""

    async def page_all() -> list[tuple[int, str]] | None:
        out: list[tuple[int, str]] = []
        after: int | None = 0
        while after is not None:
            page = (await http.get("/v1/events", params={"after": after, "limit": 1000})).json()
            out += [(e["sequence"], e["id"]) for e in page["events"]]
            after = page["next_after"]
        return [e for e in out if e[0] <= through] if out and out[-1][0] >= through else None

    found: list[tuple[int, str]] = await poll_until(page_all, f"the audit table through {through}", 60)
    return found


async def lease_stream(cluster: NatsCluster) -> str:
    """The stream behind the scheduler's lease bucket (JetStream keeps a bucket as ``KV_<bucket>``)."""

    async def named() -> list[str] | None:
        nc = await nats.connect(servers=cluster.urls, **cluster.client_options)  # type: ignore[arg-type]
        try:
            infos = await nc.jetstream().streams_info()
        except nats.errors.TimeoutError:  # a meta leader election after the first loss
            return None
        finally:
            await nc.close()
        return [n for i in infos if (n := i.config.name) and n.startswith(f"KV_{BUCKET}")]

    found: list[str] = await poll_until(named, "the lease bucket's stream", 30)
    assert len(found) == 1, found
    return found[0]


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    """Three nodes with Bay's users, made as an operator would: `bay nats init` writes the users'
    seeds in Bay's data directory and the authorization block the nodes include."""
    auth = tmp_path / "nats" / "auth.conf"
    auth.parent.mkdir(parents=True)
    init = await asyncio.create_subprocess_exec(
        *[BAY, "nats", "init", "--cluster", "local", "--auth-config", str(auth)],
        env={**clean_environment(), "BAY_DATA_DIR": str(tmp_path / "bay" / ".bay")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(init.communicate(), 30)
    assert init.returncode == 0, err
    setup_seed = NatsUsers(tmp_path / "bay" / ".bay").seed_path("setup")
    nodes = NatsCluster(tmp_path / "nats", auth=auth, client_options={"nkeys_seed": str(setup_seed)})
    nodes.start_all()
    try:
        await nodes.wait_jetstream()
        yield nodes
    finally:
        nodes.stop_all()


async def kill_and_return(cluster: NatsCluster, victim: Node, traffic: Traffic) -> None:
    """SIGKILL ``victim`` under load, see commands acknowledged without it, start it again and
    wait until it has caught up."""
    cluster.kill(victim)
    await wait_acks(traffic, len(traffic.acked) + 5, timeout=60)
    cluster.start(victim)
    await cluster.wait_caught_up(STREAM)
    await wait_acks(traffic, len(traffic.acked) + 3, timeout=60)


def said(bay: BayUp) -> str:
    """What went wrong, as the services logged it (warnings and errors, the last 30)."""
    worse = [x for x in bay.lines if " WARNING " in x or " ERROR " in x or x.startswith("bay: ")]
    return "bay up said:\n" + "\n".join(worse[-30:])


def seed_of(pid: int) -> str:
    """The NATS seed file process ``pid`` was given."""
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"BAY_NATS_NKEY_SEED="):
            return item.split(b"=", 1)[1].decode()
    return ""


def restarts(bay: BayUp) -> list[str]:
    return [line for line in bay.lines if line.startswith("bay: ") and "restarted" in line]


async def test_bay_rides_out_losing_the_stream_leader_twice(cluster: NatsCluster, tmp_path: Path) -> None:
    # a lease must outlast the cluster's failover (a new leader for the stream and the lease's
    # bucket), or its holder stops: 30 s leaves room for elections on a loaded 2-core machine
    env = {"BAY_STREAM_REPLICAS": "3", "BAY_LEASE_SECONDS": "30"}
    async with running_bay(tmp_path / "bay", nats_url=cluster.url, env_extra=env) as bay:
        assert "nats" not in bay.pids(), "with BAY_NATS_URL set, bay up starts no nats-server"
        for name, role in (("registry", "registry"), ("scheduler", "scheduler-local")):  # own users
            assert seed_of(bay.pids()[name]) == str(NatsUsers(bay.data_dir).seed_path(role))
        async with bay.http() as http:
            created = await http.post("/v1/groups", json={"name": GROUP, "cmd": "sleep 600", "instances": 0})
            assert created.status_code == 201, created.text
            info = await cluster.stream_cluster(STREAM)
            replicas = info.get("replicas")
            assert isinstance(replicas, list) and len(replicas) == 2, f"not 3 replicas: {info}"

            traffic = Traffic(GROUP, size=lambda n: n % 3)  # few tasks, each size new
            sender = asyncio.create_task(send_scales(http, traffic))
            try:
                await wait_acks(traffic, 5, timeout=60)
                first = await cluster.leader(STREAM)
                await kill_and_return(cluster, first, traffic)
                # then the node holding the scheduler's lease, unless that was the first: whatever
                # the stream's placement, losing one node must not cost the scheduler its lease
                bucket = await lease_stream(cluster)
                held = (await cluster.stream_cluster(bucket)).get("replicas")
                assert isinstance(held, list) and len(held) == 2, "the lease must survive a node's loss"
                lease = await cluster.leader(bucket)
                now = await cluster.leader(STREAM)
                second = next(n for n in (lease, now, *cluster.nodes) if n is not first)
                await kill_and_return(cluster, second, traffic)
            finally:
                traffic.stop = True
                await asyncio.wait_for(sender, 60)

            # the scheduler carries on too: a group scaled now gets its tasks running
            made = await http.post(
                "/v1/groups", json={"name": "e2e-cluster-after", "cmd": "sleep 600", "instances": 2}
            )
            assert made.status_code == 201, made.text

            async def running() -> bool:
                status = (await http.get("/v1/groups/e2e-cluster-after/status")).json()
                return status.get("running") == 2

            try:
                await poll_until(running, "two tasks of a group created after both node losses", 30)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; {said(bay)}") from None

            async def read_history() -> list[dict[str, object]] | None:
                resp = await http.get(f"/v1/groups/{GROUP}/history")
                return resp.json()["events"] if resp.status_code == 200 else None

            history = await poll_until(read_history, "the group's history", 30)
            in_stream = await stream_events(cluster.urls, cluster.client_options)
            in_audit = await audit_events(http, through=in_stream[-1][0])
        assert not restarts(bay), f"services had to be restarted: {restarts(bay)}; {said(bay)}"

    check_history(traffic, history)
    assert in_audit == in_stream, "the audit table is not the stream"
    for node in cluster.nodes:
        assert "Violation" not in (node.home / "nats.log").read_text(), f"{node.name} refused a service"
