"""For DNS tests: the DNS service as a real process, real queries, and group/task events appended
straight to the log (what the registry and a scheduler would append) where a test needs records no
real scheduler can make (hostnames, IPv6, several clusters, many services).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
from bay.v1 import group_pb2, task_pb2
from google.protobuf import message

from libs.eventlog.jetstream import JetStreamEventLog, StreamSettings
from libs.events import EventMeta, make_envelope
from libs.natsconn import connect
from libs.natsserver import free_port
from tests import natsauth

REPO = Path(__file__).resolve().parents[2]
META = EventMeta(actor="test")
T = TypeVar("T")


class EventWriter:
    """Appends registry and scheduler events as those services would."""

    def __init__(self, log: JetStreamEventLog) -> None:
        self.log = log
        self.versions: dict[str, int] = {}
        self.specs: dict[tuple[str, int], group_pb2.GroupSpec] = {}  # (group, version) -> its spec

    @classmethod
    async def open(cls, nats_url: str) -> EventWriter:
        conn = await connect(nats_url, name="dns-test-writer")
        log = JetStreamEventLog(conn, StreamSettings("BAY_EVENTS"))
        await log.ensure_stream()
        return cls(log)

    async def close(self) -> None:
        await self.log.conn.close()

    async def append(self, subject: str, event: message.Message, kind: str, ident: str) -> int:
        self.versions[subject] = version = self.versions.get(subject, 0) + 1
        env = make_envelope(
            event, aggregate_type=kind, aggregate_id=ident, aggregate_version=version, meta=META
        )
        return (await self.log.append(subject, env)).sequence

    async def cluster(self, name: str, backend: str = "local") -> None:
        c = group_pb2.Cluster(name=name, backend=backend)
        await self.append(f"bay.ev.cluster.{name}", group_pb2.ClusterRegistered(cluster=c), "cluster", name)

    async def group(
        self,
        name: str,
        *,
        cluster: str = "local",
        service: str = "",
        instances: int = 1,
        ports: dict[str, str] | None = None,
        health: bool = False,
        labels: dict[str, str] | None = None,
        kind: str = "GroupCreated",
        version: int = 1,
        cmd: str = "serve",
    ) -> None:
        spec = group_pb2.GroupSpec(
            name=name, service=service, cluster=cluster, cmd=cmd, instances=instances, labels=labels or {}
        )
        for port, proto in (ports or {"http": "tcp"}).items():
            spec.ports.add(name=port, protocol=proto)
        if health:
            spec.health_check.protocol = "http"
        self.specs[(name, version)] = spec
        event = getattr(group_pb2, kind)(spec=spec, version=version)
        await self.append(f"bay.ev.group.{name}", event, "group", name)

    async def rollout(self, name: str, *targets: tuple[int, int, bool, float | None]) -> int:
        """A GroupRolloutChanged (what the registry appends for SetRollout): per target its version,
        instances, in_service and weight; the specs are those the versions were written with."""
        event = group_pb2.GroupRolloutChanged(deployment="test")
        for version, instances, in_service, weight in targets:
            t = event.targets.add(
                version=version, spec=self.specs[(name, version)], instances=instances, in_service=in_service
            )
            if weight is not None:
                t.weight = weight
        return await self.append(f"bay.ev.group.{name}", event, "group", name)

    async def delete_group(self, name: str) -> None:
        await self.append(f"bay.ev.group.{name}", group_pb2.GroupDeleted(version=1), "group", name)

    async def launch(
        self,
        group: str,
        address: str,
        ports: dict[str, int],
        *,
        cluster: str = "local",
        service: str = "",
        hostname: str = "",
        running: bool = True,
        version: int = 1,
    ) -> str:
        task_id = f"{group}.{uuid.uuid4().hex}"
        launched = task_pb2.TaskLaunched(
            group=group,
            group_version=version,
            cluster=cluster,
            hostname=hostname or address,
            host_address=address,
            ports=ports,
            service=service or group,
        )
        await self.append(f"bay.ev.task.{cluster}.{task_id}", launched, "task", task_id)
        if running:
            await self.status(task_id, "RUNNING", cluster=cluster)
        return task_id

    async def status(self, task_id: str, state: str, *, cluster: str = "local") -> int:
        event = task_pb2.TaskStatusChanged(state=state)
        return await self.append(f"bay.ev.task.{cluster}.{task_id}", event, "task", task_id)

    async def health(self, task_id: str, healthy: bool, *, cluster: str = "local") -> int:
        event = task_pb2.TaskHealthChanged(healthy=healthy)
        return await self.append(f"bay.ev.task.{cluster}.{task_id}", event, "task", task_id)

    async def kill_requested(self, task_id: str, *, cluster: str = "local") -> int:
        event = task_pb2.TaskKillRequested(reason="surplus")
        return await self.append(f"bay.ev.task.{cluster}.{task_id}", event, "task", task_id)


@dataclass
class DnsProcess:
    """``python -m services.dns`` on free ports; ``start`` returns once it answers."""

    nats_url: str
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "dns.log"

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "BAY_NATS_URL": self.nats_url,
            "BAY_DATA_DIR": str(self.data_dir),
            "BAY_DNS_LISTEN": f"{self.host}:{self.port}",
            "BAY_DNS_GRPC_LISTEN": f"127.0.0.1:{self.grpc_port}",
            "BAY_ANONYMOUS_READ": "true",
            "OTEL_TRACES_EXPORTER": "none",
            **natsauth.env("dns"),
            **self.env,
        }
        out = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.dns"], cwd=REPO, env=env, stdout=out, stderr=out
        )
        out.close()

    async def start(self, timeout: float = 30.0) -> None:
        self.spawn()
        await self.until_answering(timeout)

    async def until_answering(self, timeout: float = 30.0) -> None:
        """Until the port answers a query (the apex SOA); the process exiting first is an error."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"dns exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                await self.query("bay.internal.", "SOA", timeout=0.2)
                return
            except (TimeoutError, dns.exception.Timeout):
                if time.monotonic() > deadline:
                    why = f"dns not answering after {timeout}s:\n{self.log_text()[-3000:]}"
                    raise AssertionError(why) from None

    async def query(
        self, name: str, rdtype: str = "A", *, tcp: bool = False, timeout: float = 2.0
    ) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype)
        if tcp:
            return await dns.asyncquery.tcp(q, self.host, port=self.port, timeout=timeout)
        return await dns.asyncquery.udp(q, self.host, port=self.port, timeout=timeout)

    async def addresses(self, name: str) -> set[str]:
        reply = await self.query(name, "A")
        return {r.address for rrset in reply.answer for r in rrset if rrset.rdtype == dns.rdatatype.A}

    async def until_addresses(
        self, name: str, want: set[str] | Callable[[set[str]], bool], timeout: float = 10.0
    ) -> set[str]:
        """Query until the answer matches (the DNS server has folded the event); the last answer."""
        return await until_answer(lambda: self.addresses(name), want, timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def until_answer(
    ask: Callable[[], Awaitable[T]], want: T | Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Ask until ``want`` (a value, or a predicate) holds, within a deadline; each ask is a real
    query, so this waits for the server's own answer to change, not for a clock."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await ask()
        if want(last) if callable(want) else last == want:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"answer still {last!r} after {timeout}s (wanted {want!r})")
