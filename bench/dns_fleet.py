"""What the DNS benchmarks serve and with what: the fleet of services and tasks (as events in a
fresh log for Bay DNS, as a hosts file and srv-host lines for dnsmasq), and the two servers as
processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype
from bay.v1 import envelope_pb2, group_pb2, task_pb2
from google.protobuf import message

from bench.infra import ServiceProcess, stop_process
from bench.scheduler import cpu_seconds
from libs.errors import BayError
from libs.eventlog.jetstream import JetStreamEventLog, ensure_stream_when_ready, event_log_for
from libs.events import EventMeta, make_envelope
from libs.natsconn import NatsConnection, connect
from libs.natsserver import free_port
from libs.settings import CommonSettings

ZONE = "bay.internal"
CLUSTER = "local"
TTL = 5
WEIGHT_TOTAL = 10_000  # Bay's SRV weights of one answer add up to about this; dnsmasq is given the same
APPEND_CHUNK = 2_000
META = EventMeta(actor="bench-dns")


@dataclass(frozen=True)
class Task:
    id: str
    group: str
    service: str
    address: str
    port: int


@dataclass
class Fleet:
    """Services, each one group of the same name, and their RUNNING tasks (what both servers answer)."""

    tasks: dict[str, list[Task]] = field(default_factory=dict)
    launched: int = 0

    @classmethod
    def build(cls, services: int, per_service: int) -> Fleet:
        fleet = cls()
        width = len(str(services - 1))
        for s in range(services):
            name = f"s{s:0{width}d}"
            fleet.tasks[name] = [fleet.new_task(name) for _ in range(per_service)]
        return fleet

    def new_task(self, service: str) -> Task:
        """A task with an address no other task had (so an answer's change can be told apart)."""
        n = self.launched + 1
        self.launched = n
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        return Task(f"{service}.{uuid.uuid4().hex}", service, service, address, 31000 + n % 1000)

    @staticmethod
    def name(service: str) -> str:
        return f"{service}.{CLUSTER}.{ZONE}"

    def addresses(self, service: str) -> frozenset[str]:
        return frozenset(t.address for t in self.tasks[service])

    @staticmethod
    def srv_name(service: str) -> str:
        return f"_http._tcp.{service}.{CLUSTER}.{ZONE}"

    @staticmethod
    def host_name(task: Task) -> str:
        """The SRV target Bay DNS names a task's host by (the label made of its address)."""
        return f"{task.address.replace('.', '-')}.host.{CLUSTER}.{ZONE}"

    def srv(self, service: str) -> frozenset[tuple[int, str]]:
        return frozenset((t.port, self.host_name(t)) for t in self.tasks[service])

    def query_file(self, path: Path, *, srv: bool = False) -> Path:
        """Every service's A name (and its SRV name: ``srv``), shuffled."""
        lines = [f"{self.name(s)} A\n" for s in self.tasks]
        if srv:
            lines += [f"{self.srv_name(s)} SRV\n" for s in self.tasks]
        random.Random(7).shuffle(lines)
        path.write_text("".join(lines))
        return path


# ---- the event log -------------------------------------------------------------------------------


def _env(event: message.Message, kind: str, ident: str, version: int) -> envelope_pb2.Envelope:
    return make_envelope(event, aggregate_type=kind, aggregate_id=ident, aggregate_version=version, meta=META)


def cluster_event() -> tuple[str, envelope_pb2.Envelope]:
    cluster = group_pb2.Cluster(name=CLUSTER, backend="local")
    event = group_pb2.ClusterRegistered(cluster=cluster)
    return f"bay.ev.cluster.{CLUSTER}", _env(event, "cluster", CLUSTER, 1)


def group_event(name: str, instances: int) -> tuple[str, envelope_pb2.Envelope]:
    spec = group_pb2.GroupSpec(
        name=name,
        service=name,
        cluster=CLUSTER,
        cmd="x",
        instances=instances,
        ports=[group_pb2.PortSpec(name="http", protocol="tcp")],
    )
    return f"bay.ev.group.{name}", _env(group_pb2.GroupCreated(spec=spec, version=1), "group", name, 1)


def launch_events(task: Task) -> list[tuple[str, envelope_pb2.Envelope]]:
    subject = f"bay.ev.task.{CLUSTER}.{task.id}"
    launched = task_pb2.TaskLaunched(
        group=task.group,
        group_version=1,
        cluster=CLUSTER,
        host_id="local",
        hostname=f"h-{task.address.replace('.', '-')}",  # one host per address, as on a real cluster
        host_address=task.address,
        ports={"http": task.port},
        service=task.service,
    )
    running = task_pb2.TaskStatusChanged(state="RUNNING")
    return [(subject, _env(launched, "task", task.id, 1)), (subject, _env(running, "task", task.id, 2))]


def kill_event(task: Task) -> tuple[str, envelope_pb2.Envelope]:
    killed = task_pb2.TaskStatusChanged(state="KILLED", message="bench")
    return f"bay.ev.task.{CLUSTER}.{task.id}", _env(killed, "task", task.id, 3)


class Seeder:
    """Appends events straight to the log, as the registry and scheduler would have."""

    def __init__(self, conn: NatsConnection, log: JetStreamEventLog) -> None:
        self.conn = conn
        self.log = log

    @classmethod
    async def open(cls, nats_url: str) -> Seeder:
        conn = await connect(nats_url, name="bench-dns")
        log = event_log_for(conn, CommonSettings(nats_url=nats_url, request_timeout_seconds=10.0))
        await ensure_stream_when_ready(log)
        return cls(conn, log)

    async def append(self, items: Sequence[tuple[str, envelope_pb2.Envelope]]) -> None:
        for i in range(0, len(items), APPEND_CHUNK):
            results = await self.log.append_batch(items[i : i + APPEND_CHUNK])
            failed = [r for r in results if isinstance(r, BayError)]
            if failed:
                raise RuntimeError(f"{len(failed)} appends failed, first: {failed[0]}")

    async def seed(self, fleet: Fleet) -> float:
        """Every group and task of the fleet; seconds taken."""
        started = time.perf_counter()
        items = [cluster_event()]
        items += [group_event(s, len(ts)) for s, ts in fleet.tasks.items()]
        for ts in fleet.tasks.values():
            for t in ts:
                items += launch_events(t)
        await self.append(items)
        return time.perf_counter() - started

    async def close(self) -> None:
        await self.conn.close()


# ---- the servers ---------------------------------------------------------------------------------


async def resolve_a(port: int, name: str, timeout: float = 0.5) -> frozenset[str] | None:
    """The A addresses a server answers for ``name`` (empty: an answer without them), None: no answer."""
    query = dns.message.make_query(name, dns.rdatatype.A)
    try:
        reply = await dns.asyncquery.udp(query, "127.0.0.1", timeout=timeout, port=port)
    except (dns.exception.Timeout, OSError):
        return None
    return frozenset(rd.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)


async def resolve_srv(port: int, name: str) -> frozenset[tuple[int, str]] | None:
    """(port, target) of the SRV records a server answers for ``name``, and only if every target's
    address came along in the additional section (as both servers are expected to send)."""
    query = dns.message.make_query(name, dns.rdatatype.SRV)
    try:
        reply = await dns.asyncquery.udp(query, "127.0.0.1", timeout=2.0, port=port)
    except (dns.exception.Timeout, OSError):
        return None
    found = frozenset(
        (rd.port, rd.target.to_text(omit_final_dot=True))
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.SRV
        for rd in rrset
    )
    glue = {rrset.name.to_text(omit_final_dot=True) for rrset in reply.additional}
    return found if all(target in glue for _, target in found) else frozenset()


async def wait_answering(
    port: int, name: str, want: frozenset[str], alive: ServiceProcess | subprocess.Popen[bytes], limit: float
) -> float:
    """Seconds until ``name`` is answered with exactly ``want``."""
    started = time.perf_counter()
    got: frozenset[str] | None = None
    while time.perf_counter() - started < limit:
        if isinstance(alive, ServiceProcess):
            alive.check_alive()
        elif alive.poll() is not None:
            raise RuntimeError(f"dnsmasq exited with {alive.returncode}")
        got = await resolve_a(port, name, timeout=0.2)
        if got == want:
            return time.perf_counter() - started
        if got is None:
            await asyncio.sleep(0.05)  # the port is not open yet: nothing to be woken by
        else:
            await asyncio.sleep(0.01)
    raise TimeoutError(f"{name} not answered with {sorted(want)} within {limit:.0f} s (last: {got})")


async def check_answers(label: str, port: int, fleet: Fleet, *, srv: bool, sample: int = 200) -> None:
    """The server answers a sample of the names with exactly the fleet's addresses."""
    services = list(fleet.tasks)
    for s in random.Random(3).sample(services, min(sample, len(services))):
        got = await resolve_a(port, fleet.name(s), timeout=2.0)
        if got != fleet.addresses(s):
            want = sorted(fleet.addresses(s))
            raise RuntimeError(f"{label} answered {fleet.name(s)} with {got}, expected {want}")
        if not srv:
            continue
        got_srv = await resolve_srv(port, fleet.srv_name(s))
        if got_srv != fleet.srv(s):
            want_srv = sorted(fleet.srv(s))
            raise RuntimeError(f"{label} answered {fleet.srv_name(s)} with {got_srv}, expected {want_srv}")


class Dnsmasq:
    """dnsmasq serving the fleet's A records (and with ``srv`` its SRV records) from a hosts file
    and ``srv-host`` lines, authoritative for the zone only.

    The SRV records are optional because dnsmasq searches its ``srv-host`` list on every query in
    the zone, A queries too (measured here: 300 of them add about half to its CPU per A query, 3,000
    make it 9 times, 30,000 about 180 times); A-only runs get a dnsmasq without them, which favours
    dnsmasq."""

    def __init__(self, fleet: Fleet, data_dir: Path, *, srv: bool) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.srv = srv
        hosts = data_dir / "hosts"
        # the host names too, so that SRV answers carry the targets' addresses as Bay's do
        tasks = [t for ts in fleet.tasks.values() for t in ts]
        lines = [f"{t.address} {fleet.name(t.service)} {fleet.host_name(t)}\n" for t in tasks]
        hosts.write_text("".join(lines))
        conf = data_dir / "dnsmasq.conf"
        conf.write_text(
            "".join(
                f"srv-host={fleet.srv_name(s)},{fleet.host_name(t)},{t.port},0,{WEIGHT_TOTAL // len(ts)}\n"
                for s, ts in fleet.tasks.items()
                for t in ts
                if srv
            )
        )
        self.port = free_port()
        self.log_file = data_dir / "dnsmasq.log"
        self._out = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [
                "dnsmasq",
                "--no-daemon",
                f"--conf-file={conf}",
                "--no-resolv",
                "--no-hosts",
                f"--addn-hosts={hosts}",
                "--listen-address=127.0.0.1",
                f"--port={self.port}",
                "--bind-interfaces",
                "--cache-size=10000",
                f"--local=/{ZONE}/",
                f"--local-ttl={TTL}",
                "--pid-file=",
                # as root it would switch to "nobody"; stay who we are
                *(["--user=root"] if os.getuid() == 0 else []),
            ],
            stdout=self._out,
            stderr=self._out,
            start_new_session=True,
        )

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def close(self) -> None:
        stop_process(self.proc)
        self._out.close()


class BayDns:
    """``python -m services.dns`` following the event log, with ``workers`` SO_REUSEPORT processes."""

    def __init__(self, nats_url: str, data_dir: Path, workers: int) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.port = free_port()
        self.proc = ServiceProcess(
            "services.dns",
            {
                "BAY_NATS_URL": nats_url,
                "BAY_DATA_DIR": str(data_dir),
                "BAY_DNS_LISTEN": f"127.0.0.1:{self.port}",
                "BAY_DNS_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
                "BAY_DNS_ZONE": f"{ZONE}.",
                "BAY_DNS_TTL": str(TTL),
                "BAY_DNS_WORKERS": str(workers),
                "BAY_LOG_LEVEL": "WARNING",
            },
            data_dir / "dns.log",
        )

    def cpu_seconds(self) -> float:
        """The main process and its worker processes (children of one session)."""
        pids = [self.proc.proc.pid, *_children(self.proc.proc.pid)]
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def close(self) -> None:
        pid = self.proc.proc.pid
        self.proc.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # workers the main process left behind, if any


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]
