"""``dns-switch``: from a registry ``SetRollout`` call to the DNS answer that shows it (issue 11).

The real registry and Bay DNS processes on their own nats-server. Two groups, each with a version 1
and a version 2 (an ``UpdateGroup`` leaves version 1 the running target), and their tasks appended
straight to the log as a scheduler would (ready at once, no health check), so only the switch is
timed:

- blue-green: ``shop`` runs two tasks of each version; each switch moves ``in_service`` from one to
  the other, and is seen when ``shop.local`` answers exactly the other version's addresses;
- canary: ``api`` runs four stable tasks and one canary; each change moves the canary's weight
  between 10% and 30%, and is seen when the canary's SRV weight under ``_http._tcp.api.local`` is the
  new step's.

The clock starts just before the gRPC call and stops at the first answer (UDP queries sent back to
back from a thread) that shows the change; the call's own round trip (the registry's append and its
read-your-writes wait) is shown beside it.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable, Hashable
from typing import TypeVar

import dns.message
import dns.rdatatype
import grpc
from bay.v1 import envelope_pb2, group_pb2, registry_pb2, registry_pb2_grpc, task_pb2

from bench.dns_fleet import CLUSTER, ZONE, BayDns, Seeder, wait_answering
from bench.infra import NatsServer, RegistryProcess, register_local_cluster
from bench.report import Result, latency_figures
from libs.events import EventMeta, make_envelope

P99_TARGET_MS = 100.0
SWITCHES = 50
DEADLINE_SECONDS = 5.0
META = EventMeta(actor="bench-dns-switch")
Key = TypeVar("Key", bound=Hashable)


def spec(name: str, version: int, instances: int) -> group_pb2.GroupSpec:
    return group_pb2.GroupSpec(
        name=name,
        cluster=CLUSTER,
        cmd=f"serve build-{version}",  # another command: a new version, not a scale
        instances=instances,
        ports=[group_pb2.PortSpec(name="http", protocol="tcp")],
    )


def task_events(group: str, version: int, address: str, port: int) -> list[tuple[str, envelope_pb2.Envelope]]:
    """A task of one version, launched and RUNNING, as its scheduler appends it."""
    task_id = f"{group}.{uuid.uuid4().hex}"
    subject = f"bay.ev.task.{CLUSTER}.{task_id}"
    launched = task_pb2.TaskLaunched(
        group=group,
        group_version=version,
        cluster=CLUSTER,
        host_id="local",
        hostname=f"h-{address.replace('.', '-')}",
        host_address=address,
        ports={"http": port},
        service=group,
    )
    running = task_pb2.TaskStatusChanged(state="RUNNING")
    return [
        (
            subject,
            make_envelope(ev, aggregate_type="task", aggregate_id=task_id, aggregate_version=n, meta=META),
        )
        for n, ev in ((1, launched), (2, running))
    ]


def target(
    version: int, instances: int, in_service: bool, weight: float | None = None
) -> registry_pb2.RolloutTarget:
    t = registry_pb2.RolloutTarget(version=version, instances=instances, in_service=in_service)
    if weight is not None:
        t.weight = weight
    return t


def addresses(reply: dns.message.Message) -> frozenset[str]:
    return frozenset(rd.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)


def srv_weights(reply: dns.message.Message) -> frozenset[tuple[int, int]]:
    return frozenset(
        (rd.port, rd.weight) for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for rd in rrset
    )


def poll_until(
    port: int, name: str, rdtype: int, read: Callable[[dns.message.Message], Key], want: Key, deadline: float
) -> float:
    """Query back to back over UDP until ``read(reply) == want``; when. A blocking socket in a thread:
    the event loop makes the gRPC call meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(0.05)
        got: Key | None = None
        while time.perf_counter() < deadline:
            query = dns.message.make_query(name, rdtype)
            sock.send(query.to_wire())
            try:
                while True:  # skip a late reply to an earlier query
                    reply = dns.message.from_wire(sock.recv(65535))
                    if reply.id == query.id:
                        break
            except TimeoutError:
                continue
            got = read(reply)
            if got == want:
                return time.perf_counter()
    raise TimeoutError(f"{name} still answered {got!r}, wanted {want!r}")


async def timed_switch(
    stub: registry_pb2_grpc.RegistryStub,
    md: tuple[tuple[str, str], ...],
    request: registry_pb2.SetRolloutRequest,
    poll: Callable[[float], float],
) -> tuple[float, float]:
    """(seconds to the changed answer, seconds of the call itself)."""
    deadline = time.perf_counter() + DEADLINE_SECONDS
    watching = asyncio.create_task(asyncio.to_thread(poll, deadline))
    await asyncio.sleep(0)  # the thread's first query goes out before the call
    started = time.perf_counter()
    await stub.SetRollout(request, metadata=md)
    called = time.perf_counter()
    seen = await watching
    return seen - started, called - started


async def run_dns_switch(switches: int = SWITCHES) -> Result:
    res = Result("dns-switch", "SetRollout -> changed DNS answer (blue-green switch, canary weight change)")
    res.params = {
        "switches": f"{switches} blue-green in_service flips and {switches} canary weight changes",
        "registry": "python -m services.registry",
        "dns": "python -m services.dns (1 process)",
        "clock": "from just before the SetRollout call to the first UDP answer showing the change",
    }
    nats = NatsServer("dns-switch")
    reg = RegistryProcess(nats.url, nats.dir / "registry")
    bay: BayDns | None = None
    seeder: Seeder | None = None
    try:
        await reg.ready()
        async with grpc.aio.insecure_channel(reg.addr) as ch:
            stub = registry_pb2_grpc.RegistryStub(ch)
            md = reg.metadata
            await register_local_cluster(stub, md)
            for name, stable in (("shop", 2), ("api", 4)):
                await stub.CreateGroup(
                    registry_pb2.CreateGroupRequest(spec=spec(name, 1, stable)), metadata=md
                )
                await stub.UpdateGroup(
                    registry_pb2.UpdateGroupRequest(spec=spec(name, 2, stable)), metadata=md
                )
            blue = ["10.7.1.1", "10.7.1.2"]
            green = ["10.7.2.1", "10.7.2.2"]
            stable_ips = [f"10.8.1.{i + 1}" for i in range(4)]
            items: list[tuple[str, envelope_pb2.Envelope]] = []
            for i, a in enumerate(blue):
                items += task_events("shop", 1, a, 31000 + i)
            for i, a in enumerate(green):
                items += task_events("shop", 2, a, 32000 + i)
            for i, a in enumerate(stable_ips):
                items += task_events("api", 1, a, 33000 + i)
            items += task_events("api", 2, "10.8.2.1", 34000)
            seeder = await Seeder.open(nats.url)
            await seeder.append(items)
            await stub.SetRollout(
                registry_pb2.SetRolloutRequest(
                    name="shop", targets=[target(1, 2, True), target(2, 2, False)], deployment="bench"
                ),
                metadata=md,
            )
            bay = BayDns(nats.url, nats.dir / "dns", workers=1)
            shop = f"shop.{CLUSTER}.{ZONE}."
            await wait_answering(bay.port, shop, frozenset(blue), bay.proc, 60)
            port = bay.port

            flips: list[float] = []
            calls: list[float] = []
            for i in range(switches):
                to_green = i % 2 == 0
                want = frozenset(green if to_green else blue)
                request = registry_pb2.SetRolloutRequest(
                    name="shop",
                    targets=[target(1, 2, not to_green), target(2, 2, to_green)],
                    deployment="bench",
                )

                def poll_flip(deadline: float, want: frozenset[str] = want) -> float:
                    return poll_until(port, shop, dns.rdatatype.A, addresses, want, deadline)

                seen, call = await timed_switch(stub, md, request, poll_flip)
                flips.append(seen)
                calls.append(call)

            srv = f"_http._tcp.api.{CLUSTER}.{ZONE}."
            steps: list[float] = []
            for i in range(switches):
                percent = 10.0 if i % 2 == 0 else 30.0
                canary = round(10_000 * percent / 100)
                stable = (10_000 - canary) // 4  # 4 stable tasks: the rest, evenly (it divides)
                want_srv = frozenset({(34000, canary)} | {(33000 + j, stable) for j in range(4)})
                request = registry_pb2.SetRolloutRequest(
                    name="api",
                    targets=[target(1, 4, True), target(2, 1, True, percent)],
                    deployment="bench",
                )

                def poll_step(deadline: float, want: frozenset[tuple[int, int]] = want_srv) -> float:
                    return poll_until(port, srv, dns.rdatatype.SRV, srv_weights, want, deadline)

                seen, call = await timed_switch(stub, md, request, poll_step)
                steps.append(seen)
                calls.append(call)

        both = latency_figures(res, "SetRollout -> answer", flips + steps)
        latency_figures(res, "blue-green switch -> service answer", flips)
        latency_figures(res, "canary weight -> SRV weights", steps)
        latency_figures(res, "SetRollout call (append + registry fold)", calls)
        res.target(f"p99 < {P99_TARGET_MS:g} ms", both["p99"] < P99_TARGET_MS, f"{both['p99']:.3f} ms")
    finally:
        if seeder is not None:
            await seeder.close()
        if bay is not None:
            bay.close()
        reg.close()
        nats.close()
    return res
