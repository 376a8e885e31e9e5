"""The DNS process answering from events: every kind of name, negative answers, SRV weights, several
clusters, hostnames, IPv6, TCP and truncation, rotation, and a restart that answers before it listens.
Real nats-server, real DNS process, real packets (dnspython)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import pytest_asyncio

from services.dns import udpfast
from tests.conftest import NatsProcess
from tests.integration.dns_harness import DnsProcess, EventWriter, until_answer

pytestmark = pytest.mark.timeout(120)


@pytest_asyncio.fixture
async def events(fresh_stream: str) -> AsyncIterator[EventWriter]:
    writer = await EventWriter.open(fresh_stream)
    await writer.cluster("local")
    await writer.cluster("eu", backend="mesos")
    yield writer
    await writer.close()


@pytest_asyncio.fixture(params=["c", "python"])
async def dns_server(
    request: pytest.FixtureRequest, fresh_stream: str, tmp_path: Path, events: EventWriter
) -> AsyncIterator[DnsProcess]:
    """Each test twice: with the C fast path for UDP and with the Python one (the same answers)."""
    if request.param == "c" and udpfast.load() is None:
        pytest.skip("the C fast path is not built (make setup builds it where there is a compiler)")
    server = DnsProcess(fresh_stream, tmp_path / "dns", env={"BAY_DNS_FAST_PATH": request.param})
    await server.start()
    yield server
    server.stop()


def rrs(reply: dns.message.Message, rdtype: int) -> list[dns.rdata.Rdata]:
    return [r for rrset in reply.answer if rrset.rdtype == rdtype for r in rrset]


async def test_service_cluster_group_names(events: EventWriter, dns_server: DnsProcess) -> None:
    await events.group("web", instances=2)
    await events.group("web-canary", service="web", instances=1)
    await events.group("web-eu", service="web", cluster="eu")
    await events.launch("web", "10.0.0.1", {"http": 31001})
    await events.launch("web", "10.0.0.2", {"http": 31002})
    await events.launch("web-canary", "10.0.0.3", {"http": 31003}, service="web")
    await events.launch("web-eu", "10.1.0.1", {"http": 32001}, cluster="eu", service="web")

    local = {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    assert await dns_server.until_addresses("web.local.bay.internal.", local) == local
    assert await dns_server.addresses("web.eu.bay.internal.") == {"10.1.0.1"}
    assert await dns_server.addresses("web.bay.internal.") == local | {"10.1.0.1"}
    assert await dns_server.addresses("web-canary.group.local.bay.internal.") == {"10.0.0.3"}
    assert await dns_server.addresses("WEB.Local.BAY.internal.") == local  # case does not matter

    reply = await dns_server.query("web.local.bay.internal.")
    assert reply.flags & dns.flags.AA and reply.rcode() == dns.rcode.NOERROR
    assert reply.answer[0].ttl == 5
    assert str(reply.question[0].name) == "web.local.bay.internal."


async def test_srv_records_weights_and_targets(events: EventWriter, dns_server: DnsProcess) -> None:
    # main: 3 instances, canary: 1 -> the canary's one task gets a quarter of the weight
    await events.group("api", instances=3, ports={"grpc": "tcp", "stats": "udp"})
    await events.group("api-canary", service="api", instances=1, ports={"grpc": "tcp", "stats": "udp"})
    for i in range(3):
        await events.launch("api", f"10.0.1.{i + 1}", {"grpc": 31000 + i, "stats": 31100 + i})
    await events.launch("api-canary", "10.0.1.9", {"grpc": 31009, "stats": 31109}, service="api")

    name = "_grpc._tcp.api.local.bay.internal."

    async def srv() -> list[tuple[int, int, str]]:
        reply = await dns_server.query(name, "SRV")
        return sorted((r.port, r.weight, str(r.target)) for r in rrs(reply, dns.rdatatype.SRV))

    found = await until_answer(srv, lambda rows: len(rows) == 4)
    weights = {port: weight for port, weight, _ in found}
    assert weights[31009] * 3 == pytest.approx(sum(weights[31000 + i] for i in range(3)), rel=0.01)
    assert {target for _, _, target in found} == {
        "10-0-1-1.host.local.bay.internal.",
        "10-0-1-2.host.local.bay.internal.",
        "10-0-1-3.host.local.bay.internal.",
        "10-0-1-9.host.local.bay.internal.",
    }
    reply = await dns_server.query(name, "SRV")
    glue = {(str(rrset.name), r.address) for rrset in reply.additional for r in rrset}
    assert ("10-0-1-9.host.local.bay.internal.", "10.0.1.9") in glue
    # the target resolves on its own, too
    assert await dns_server.addresses("10-0-1-2.host.local.bay.internal.") == {"10.0.1.2"}
    # udp port under _udp, not _tcp
    udp = await dns_server.query("_stats._udp.api.local.bay.internal.", "SRV")
    assert sorted(r.port for r in rrs(udp, dns.rdatatype.SRV)) == [31100, 31101, 31102, 31109]
    assert (
        await dns_server.query("_stats._tcp.api.local.bay.internal.", "SRV")
    ).rcode() == dns.rcode.NXDOMAIN
    # across clusters, and for one group
    whole = await dns_server.query("_grpc._tcp.api.bay.internal.", "SRV")
    assert len(rrs(whole, dns.rdatatype.SRV)) == 4
    one = await dns_server.query("_grpc._tcp.api-canary.group.local.bay.internal.", "SRV")
    assert [r.port for r in rrs(one, dns.rdatatype.SRV)] == [31009]


async def test_weight_label_sets_the_share(events: EventWriter, dns_server: DnsProcess) -> None:
    await events.group("pay", instances=1, labels={"bay.dns/weight": "90"})
    await events.group("pay-canary", service="pay", instances=1, labels={"bay.dns/weight": "10"})
    await events.launch("pay", "10.0.2.1", {"http": 31000})
    await events.launch("pay-canary", "10.0.2.2", {"http": 31001}, service="pay")

    async def weights() -> dict[int, int]:
        reply = await dns_server.query("_http._tcp.pay.local.bay.internal.", "SRV")
        return {r.port: r.weight for r in rrs(reply, dns.rdatatype.SRV)}

    found = await until_answer(weights, lambda w: len(w) == 2)
    assert found[31000] == 9 * found[31001]


async def test_negative_answers_carry_the_soa(events: EventWriter, dns_server: DnsProcess) -> None:
    await events.group("idle", instances=0)
    await events.group("staged")
    await events.launch("staged", "10.0.3.1", {"http": 31000}, running=False)

    nx = await until_answer(
        lambda: dns_server.query("nothing.local.bay.internal."), lambda r: r.rcode() == dns.rcode.NXDOMAIN
    )
    assert not nx.answer and nx.authority[0].rdtype == dns.rdatatype.SOA
    assert str(nx.authority[0].name) == "bay.internal." and nx.authority[0].ttl == 5

    async def idle() -> dns.message.Message:
        return await dns_server.query("idle.local.bay.internal.")

    empty = await until_answer(idle, lambda r: r.rcode() == dns.rcode.NOERROR)
    assert not empty.answer and empty.authority[0].rdtype == dns.rdatatype.SOA
    # a task that is not running yet is not answered either
    staged = await dns_server.query("staged.local.bay.internal.")
    assert staged.rcode() == dns.rcode.NOERROR and not staged.answer
    # AAAA of an IPv4-only service: no data, not NXDOMAIN
    await events.launch("staged", "10.0.3.2", {"http": 31001})
    await dns_server.until_addresses("staged.local.bay.internal.", {"10.0.3.2"})
    v6 = await dns_server.query("staged.local.bay.internal.", "AAAA")
    assert v6.rcode() == dns.rcode.NOERROR and not v6.answer and v6.authority
    # empty non-terminals exist
    for name in ("local.bay.internal.", "group.local.bay.internal.", "_tcp.staged.local.bay.internal."):
        assert (await dns_server.query(name)).rcode() == dns.rcode.NOERROR, name
    # the apex
    soa = await dns_server.query("bay.internal.", "SOA")
    assert rrs(soa, dns.rdatatype.SOA)[0].mname.to_text() == "ns.bay.internal."
    ns = await dns_server.query("bay.internal.", "NS")
    assert [str(r.target) for r in rrs(ns, dns.rdatatype.NS)] == ["ns.bay.internal."]
    assert await dns_server.addresses("ns.bay.internal.") == {"127.0.0.1"}


async def test_readiness_health_kill_and_end(events: EventWriter, dns_server: DnsProcess) -> None:
    await events.group("chk", instances=2, health=True)
    a = await events.launch("chk", "10.0.4.1", {"http": 31000})
    b = await events.launch("chk", "10.0.4.2", {"http": 31001})
    name = "chk.local.bay.internal."
    # a health-checked group: running is not enough
    assert await dns_server.until_addresses(name, set()) == set()
    await events.health(a, True)
    await events.health(b, True)
    await dns_server.until_addresses(name, {"10.0.4.1", "10.0.4.2"})
    await events.health(b, False)
    await dns_server.until_addresses(name, {"10.0.4.1"})
    await events.health(b, True)
    await dns_server.until_addresses(name, {"10.0.4.1", "10.0.4.2"})
    await events.kill_requested(a)  # drained from DNS as soon as the scheduler decides to kill it
    await dns_server.until_addresses(name, {"10.0.4.2"})
    await events.status(b, "FAILED")
    await dns_server.until_addresses(name, set())
    await events.delete_group("chk")
    gone = await until_answer(lambda: dns_server.query(name), lambda r: r.rcode() == dns.rcode.NXDOMAIN)
    assert not gone.answer


async def test_ipv6_and_hostnames(events: EventWriter, fresh_stream: str, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("10.9.0.7 agent-007.sim agent-007\n# a comment\n10.9.0.8 agent-008.sim\n")
    await events.group("v6")
    await events.launch("v6", "fd00::1", {"http": 31000})
    await events.group("mesos", cluster="eu")
    await events.launch("mesos", "agent-007.sim", {"http": 31000}, cluster="eu")
    await events.launch("mesos", "agent-008.sim", {"http": 31001}, cluster="eu")
    await events.launch("mesos", "no-such-host.invalid", {"http": 31002}, cluster="eu")
    server = DnsProcess(fresh_stream, tmp_path / "dns", env={"BAY_DNS_HOSTS_FILE": str(hosts)})
    await server.start()
    try:
        v6 = await server.query("v6.local.bay.internal.", "AAAA")
        assert [r.address for r in rrs(v6, dns.rdatatype.AAAA)] == ["fd00::1"]
        assert not (await server.query("v6.local.bay.internal.", "A")).answer
        # hostnames resolved before the port opened: the first answer has them
        assert await server.addresses("mesos.eu.bay.internal.") == {"10.9.0.7", "10.9.0.8"}
        srv = await server.query("_http._tcp.mesos.eu.bay.internal.", "SRV")
        assert sorted(str(r.target) for r in rrs(srv, dns.rdatatype.SRV)) == [
            "agent-007-sim.host.eu.bay.internal.",
            "agent-008-sim.host.eu.bay.internal.",
        ]
    finally:
        server.stop()


async def test_tcp_edns_and_truncation(events: EventWriter, dns_server: DnsProcess) -> None:
    await events.group("big", instances=200)
    for i in range(200):
        await events.launch("big", f"10.1.{i // 250}.{i % 250 + 1}", {"http": 31000 + i}, service="big")
    name = "big.local.bay.internal."
    every = await until_answer(
        lambda: dns_server.query(name, tcp=True), lambda r: len(rrs(r, dns.rdatatype.A)) == 200
    )
    assert not every.flags & dns.flags.TC
    # plain UDP: 512 bytes at most, TC set, the records that fit
    plain = dns.message.make_query(name, "A")
    raw = await _udp_raw(dns_server.port, plain.to_wire())
    assert len(raw) <= 512
    cut = dns.message.from_wire(raw)
    assert cut.flags & dns.flags.TC and 0 < len(rrs(cut, dns.rdatatype.A)) < 200
    # EDNS0 with 4096: our own limit (1232) still applies
    big = dns.message.make_query(name, "A", use_edns=0, payload=4096)
    raw = await _udp_raw(dns_server.port, big.to_wire())
    assert 512 < len(raw) <= 1232
    assert dns.message.from_wire(raw).edns == 0
    # dnspython's resolver logic: UDP, TC -> TCP, all 200
    reply, used_tcp = await dns.asyncquery.udp_with_fallback(
        plain, "127.0.0.1", port=dns_server.port, timeout=2
    )
    assert used_tcp and len(rrs(reply, dns.rdatatype.A)) == 200
    # several queries on one TCP connection
    with socket.create_connection(("127.0.0.1", dns_server.port), timeout=2) as s:
        for qname in ("big.local.bay.internal.", "nothing.bay.internal."):
            dns.query.send_tcp(s, dns.message.make_query(qname, "A"))
            got, _ = dns.query.receive_tcp(s, expiration=time.time() + 2)
            assert str(got.question[0].name) == qname


async def test_answers_rotate(events: EventWriter, dns_server: DnsProcess) -> None:
    await events.group("rr", instances=4)
    for i in range(4):
        await events.launch("rr", f"10.2.0.{i + 1}", {"http": 31000})
    name = "rr.local.bay.internal."
    await dns_server.until_addresses(name, lambda found: len(found) == 4)
    firsts = set()
    for _ in range(8):
        reply = await dns_server.query(name)
        firsts.add(rrs(reply, dns.rdatatype.A)[0].address)
    assert len(firsts) == 4


async def test_restart_answers_from_the_log_before_listening(
    events: EventWriter, fresh_stream: str, tmp_path: Path
) -> None:
    await events.group("kept", instances=3)
    for i in range(3):
        await events.launch("kept", f"10.3.0.{i + 1}", {"http": 31000})
    first = DnsProcess(fresh_stream, tmp_path / "dns")
    await first.start()
    await first.until_addresses("kept.local.bay.internal.", lambda found: len(found) == 3)
    first.stop()
    second = DnsProcess(fresh_stream, tmp_path / "dns2", port=first.port)
    second.spawn()
    try:
        # the very first answer on the port is already the whole set: the log was replayed first
        await second.until_answering()
        assert await second.addresses("kept.local.bay.internal.") == {"10.3.0.1", "10.3.0.2", "10.3.0.3"}
    finally:
        second.stop()


async def _udp_raw(port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, data)
        return await asyncio.wait_for(loop.sock_recv(s, 65535), 2)


GETADDRINFO = """
import json, socket, sys
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = sorted({ai[4][0] for ai in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)})
    except socket.gaierror as exc:
        out[name] = exc.errno
print(json.dumps(out))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="pointing glibc at the server needs root (port 53 and a private /etc/resolv.conf)",
)
async def test_glibc_getaddrinfo_through_port_53(
    events: EventWriter, fresh_stream: str, tmp_path: Path
) -> None:
    """glibc's resolver only speaks to port 53 of the addresses in /etc/resolv.conf: the server
    listens on port 53 of its own loopback address, and a child process in a private mount namespace
    gets a resolv.conf that names it."""
    await events.group("glibc", instances=2)
    await events.launch("glibc", "10.7.0.1", {"http": 31000})
    await events.launch("glibc", "10.7.0.2", {"http": 31001})
    await events.group("glibc6")
    await events.launch("glibc6", "fd00::7", {"http": 31000})
    address = f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.53"
    server = DnsProcess(fresh_stream, tmp_path / "dns", host=address, port=53)
    await server.start()
    try:
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {address}\noptions timeout:2 attempts:1\n")
        names = ["glibc.local.bay.internal", "glibc6.local.bay.internal", "nothing.local.bay.internal"]
        lookup = f"exec {sys.executable} -c '{GETADDRINFO}' {' '.join(names)}"
        script = f"mount --bind {resolv} /etc/resolv.conf && {lookup}"
        run = await asyncio.to_thread(
            subprocess.run, ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=30
        )
        if run.returncode != 0 and "mount" in run.stderr:
            pytest.skip(f"no private mount namespace here: {run.stderr.strip()}")
        assert run.returncode == 0, run.stderr
        found = json.loads(run.stdout)
        assert found["glibc.local.bay.internal"] == ["10.7.0.1", "10.7.0.2"]
        assert found["glibc6.local.bay.internal"] == ["fd00::7"]
        assert found["nothing.local.bay.internal"] == socket.EAI_NONAME
    finally:
        server.stop()


MALFORMED = [
    b"",  # nothing
    b"\x12",  # shorter than a header
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",  # a question promised, none there
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f" + b"a" * 10,  # a label running off the end
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # a pointer to itself
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x01\x00\x01\xff",  # a bad OPT
    b"\x12\x34\x01\x00\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # 65535 questions
    b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # a response: never answered
]


async def test_malformed_packets_get_formerr_or_nothing_and_harm_nothing(
    events: EventWriter, dns_server: DnsProcess
) -> None:
    await events.group("sturdy")
    await events.launch("sturdy", "10.8.0.1", {"http": 31000})
    await dns_server.until_addresses("sturdy.local.bay.internal.", {"10.8.0.1"})
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, ("127.0.0.1", dns_server.port))
        for packet in MALFORMED:
            await loop.sock_sendall(s, packet)
        # random junk too, a lot of it, fast
        rng = random.Random(7)
        for _ in range(2000):
            junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
            if junk[:2] != b"\x10\x92":  # the real query's id, below
                await loop.sock_sendall(s, junk)
        # a real query after the junk: answered; every reply to junk is a FORMERR-style error, never a crash
        await loop.sock_sendall(
            s, dns.message.make_query("sturdy.local.bay.internal.", "A", id=4242).to_wire()
        )
        replies = []
        while True:
            data = await asyncio.wait_for(loop.sock_recv(s, 65535), 5)
            if data[:2] == b"\x10\x92":  # id 4242: the real query's answer comes after every junk reply
                break
            replies.append(data)
    answer = dns.message.from_wire(data)
    assert [r.address for r in rrs(answer, dns.rdatatype.A)] == ["10.8.0.1"], answer.to_text()
    rcodes = {dns.message.from_wire(r, question_only=True).rcode() for r in replies}
    assert rcodes <= {
        dns.rcode.FORMERR,
        dns.rcode.NOTIMP,
        dns.rcode.REFUSED,
        dns.rcode.NXDOMAIN,
        dns.rcode.NOERROR,
    }
    assert dns.rcode.FORMERR in rcodes
    # over TCP: junk closes that connection only
    reader, writer = await asyncio.open_connection("127.0.0.1", dns_server.port)
    writer.write(b"\x00\x05hello")
    await writer.drain()
    head = await asyncio.wait_for(reader.read(2), 5)
    writer.close()
    assert head == b"" or len(head) == 2
    reply = await dns_server.query("sturdy.local.bay.internal.", tcp=True)
    assert [r.address for r in rrs(reply, dns.rdatatype.A)] == ["10.8.0.1"]
    assert dns_server.proc is not None and dns_server.proc.poll() is None


async def test_nats_down_the_answers_stay_and_catch_up_after(
    fresh_stream: str, nats_server: NatsProcess, tmp_path: Path
) -> None:
    """DNS is what every service depends on: it keeps answering from its fold while NATS is down,
    and follows the log again once NATS is back."""
    writer = await EventWriter.open(fresh_stream)
    await writer.cluster("local")
    await writer.group("steady", instances=2)
    await writer.launch("steady", "10.6.0.1", {"http": 31000})
    await writer.close()
    server = DnsProcess(fresh_stream, tmp_path / "dns")
    await server.start()
    try:
        await server.until_addresses("steady.local.bay.internal.", {"10.6.0.1"})
        nats_server.stop()
        for _ in range(20):
            assert await server.addresses("steady.local.bay.internal.") == {"10.6.0.1"}
        nats_server.start()
        writer = await EventWriter.open(fresh_stream)
        await writer.launch("steady", "10.6.0.2", {"http": 31001})
        await writer.close()
        await server.until_addresses("steady.local.bay.internal.", {"10.6.0.1", "10.6.0.2"}, timeout=30)
    finally:
        if not nats_server.running:
            nats_server.start()
        server.stop()


async def test_tcp_clients_are_bounded_and_idle_ones_closed(fresh_stream: str, tmp_path: Path) -> None:
    env = {"BAY_DNS_TCP_CLIENTS": "2", "BAY_DNS_TCP_IDLE_SECONDS": "0.5"}
    server = DnsProcess(fresh_stream, tmp_path / "dns", env=env)
    await server.start()
    try:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        for _reader, writer in held:  # both are served
            query = dns.message.make_query("bay.internal.", "SOA").to_wire()
            writer.write(len(query).to_bytes(2, "big") + query)
        for reader, _writer in held:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
            assert dns.message.from_wire(await reader.readexactly(size)).answer
        # a third while two are open: closed at once, without an answer
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(2), 5) == b""
        writer.close()
        # the idle two are closed by the server after its idle timeout
        started = time.monotonic()
        for reader, writer in held:
            assert await asyncio.wait_for(reader.read(2), 5) == b""
            writer.close()
        assert time.monotonic() - started < 3
        # and a new client is served again
        reply = await server.query("bay.internal.", "SOA", tcp=True)
        assert reply.answer
    finally:
        server.stop()
