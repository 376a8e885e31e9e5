"""The DNS forwarder against a small real upstream DNS server on 127.0.0.1 (UDP and TCP on one port):
answers, cache hits and expiry, negative caching, TC -> TCP, silent and down upstreams, coalescing,
and the forwarding through the DNS process (the allow-list and the settings parsers:
tests/unit/test_dns_forward_settings.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from services.dns.forward import Forwarder, parse_networks
from tests.integration.dns_harness import DnsProcess
from tests.integration.dns_upstream import BIG_COUNT, RECORDS, Clock, Upstream
from tests.poll import poll_until

LOCAL = parse_networks("127.0.0.0/8,::1/128")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream(RECORDS)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fwd(upstream: Upstream, clock: Clock) -> AsyncIterator[Forwarder]:
    forwarder = Forwarder([("127.0.0.1", upstream.port)], networks=LOCAL, timeout=1.0, clock=clock)
    yield forwarder
    await forwarder.close()


def query(name: str, rdtype: str = "A", *, edns: bool = True) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0 if edns else False)


def addresses(response: dns.message.Message) -> set[str]:
    return {rdata.to_text() for rrset in response.answer for rdata in rrset}


def closed_port() -> int:
    """A UDP and TCP port on 127.0.0.1 that nothing listens on (just released by us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_forwarded_answer(fwd: Forwarder, upstream: Upstream) -> None:
    q = query("www.example.")
    response = await fwd.forward(q, tcp=False)
    assert response.id == q.id
    assert response.rcode() == dns.rcode.NOERROR
    assert addresses(response) == {"192.0.2.1"}
    assert response.answer[0].ttl == 300
    assert response.question == q.question
    assert response.flags & dns.flags.QR and response.flags & dns.flags.RA and response.flags & dns.flags.RD
    assert not response.flags & dns.flags.AA  # the upstream's authority is not ours to claim
    assert response.edns == 0
    assert upstream.count("www.example.") == 1
    assert fwd.forwarded == 1 and fwd.cache_hits == 0


async def test_second_query_from_cache_with_aged_ttl(
    fwd: Forwarder, upstream: Upstream, clock: Clock
) -> None:
    await fwd.forward(query("www.example."), tcp=False)
    clock.now += 10.5
    q = query("WWW.Example.", edns=False)
    response = await fwd.forward(q, tcp=False)
    assert upstream.count("www.example.") == 1
    assert fwd.cache_hits == 1 and fwd.forwarded == 1
    assert response.id == q.id
    assert response.question[0].name.to_text() == "WWW.Example."  # the case as asked
    assert addresses(response) == {"192.0.2.1"}
    assert response.answer[0].ttl == 290
    assert response.flags & dns.flags.RA
    assert response.edns == -1  # the client asked without EDNS
    # Another type of the same name is its own entry.
    aaaa = await fwd.forward(query("www.example.", "AAAA"), tcp=False)
    assert addresses(aaaa) == {"2001:db8::1"}
    assert upstream.count("www.example.") == 2


async def test_expiry_requeries(fwd: Forwarder, upstream: Upstream, clock: Clock) -> None:
    await fwd.forward(query("www.example."), tcp=False)
    clock.now += 299.5
    assert (await fwd.forward(query("www.example."), tcp=False)).answer[0].ttl == 1
    assert upstream.count("www.example.") == 1
    clock.now += 0.5
    response = await fwd.forward(query("www.example."), tcp=False)
    assert upstream.count("www.example.") == 2
    assert response.answer[0].ttl == 300


async def test_max_ttl_caps_cache_and_answer(upstream: Upstream, clock: Clock) -> None:
    forwarder = Forwarder([("127.0.0.1", upstream.port)], networks=LOCAL, max_ttl=100, clock=clock)
    try:
        first = await forwarder.forward(query("long.example."), tcp=False)
        assert first.answer[0].ttl == 100
        clock.now += 99
        assert (await forwarder.forward(query("long.example."), tcp=False)).answer[0].ttl == 1
        assert upstream.count("long.example.") == 1
        clock.now += 1
        await forwarder.forward(query("long.example."), tcp=False)
        assert upstream.count("long.example.") == 2
    finally:
        await forwarder.close()


async def test_nxdomain_cached_by_soa_minimum(fwd: Forwarder, upstream: Upstream, clock: Clock) -> None:
    response = await fwd.forward(query("nope.example."), tcp=False)
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.authority[0].rdtype == dns.rdatatype.SOA
    assert response.authority[0].ttl == 30  # min(SOA TTL 600, SOA minimum 30)
    clock.now += 29
    again = await fwd.forward(query("nope.example."), tcp=False)
    assert again.rcode() == dns.rcode.NXDOMAIN and again.authority[0].ttl == 1
    assert upstream.count("nope.example.") == 1 and fwd.cache_hits == 1
    clock.now += 1
    await fwd.forward(query("nope.example."), tcp=False)
    assert upstream.count("nope.example.") == 2


async def test_nodata_cached_and_capped_by_negative_ttl(upstream: Upstream, clock: Clock) -> None:
    forwarder = Forwarder([("127.0.0.1", upstream.port)], networks=LOCAL, negative_ttl=5, clock=clock)
    try:
        response = await forwarder.forward(query("www.example.", "MX"), tcp=False)
        assert response.rcode() == dns.rcode.NOERROR and not response.answer
        assert response.authority[0].ttl == 5
        clock.now += 4
        await forwarder.forward(query("www.example.", "MX"), tcp=False)
        assert forwarder.cache_hits == 1 and upstream.count("www.example.") == 1
        clock.now += 1
        await forwarder.forward(query("www.example.", "MX"), tcp=False)
        assert upstream.count("www.example.") == 2
    finally:
        await forwarder.close()


async def test_truncated_udp_retried_over_tcp(fwd: Forwarder, upstream: Upstream) -> None:
    response = await fwd.forward(query("big.example."), tcp=False)
    assert not response.flags & dns.flags.TC
    assert len(addresses(response)) == BIG_COUNT
    assert upstream.count("big.example.", "udp") == 1
    assert upstream.count("big.example.", "tcp") == 1
    assert fwd.forwarded == 2
    # The full answer is what got cached.
    assert len(addresses(await fwd.forward(query("big.example."), tcp=False))) == BIG_COUNT
    assert upstream.count("big.example.", "tcp") == 1


async def test_tcp_client_goes_tcp(fwd: Forwarder, upstream: Upstream) -> None:
    response = await fwd.forward(query("other.example."), tcp=True)
    assert addresses(response) == {"192.0.2.4"}
    assert upstream.count("other.example.", "tcp") == 1
    assert upstream.count("other.example.", "udp") == 0


async def test_silent_upstreams_servfail_in_time(upstream: Upstream) -> None:
    timeout = 0.3
    forwarder = Forwarder([("127.0.0.1", upstream.port)] * 2, networks=LOCAL, timeout=timeout)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        q = query("silent.example.")
        response = await forwarder.forward(q, tcp=False)
        elapsed = loop.time() - started
        assert response.rcode() == dns.rcode.SERVFAIL
        assert response.id == q.id and response.question == q.question
        assert upstream.count("silent.example.") == 2  # both upstreams were asked
        assert timeout * 2 <= elapsed < timeout * 2 + 1.0  # margin for a loaded test machine
        assert forwarder.failures == 1
        # SERVFAIL is not cached: the next query asks again.
        await forwarder.forward(query("silent.example."), tcp=False)
        assert upstream.count("silent.example.") == 4
        assert forwarder.cache_hits == 0 and forwarder.failures == 2
    finally:
        await forwarder.close()


async def test_second_upstream_when_first_is_down(upstream: Upstream) -> None:
    timeout = 2.0
    forwarder = Forwarder(
        [("127.0.0.1", closed_port()), ("127.0.0.1", upstream.port)], networks=LOCAL, timeout=timeout
    )
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await forwarder.forward(query("www.example."), tcp=False)
        # The connected UDP socket hears the port-unreachable, so the down upstream costs no timeout.
        assert loop.time() - started < timeout
        assert addresses(response) == {"192.0.2.1"}
        assert upstream.count("www.example.") == 1
        tcp_response = await forwarder.forward(query("other.example."), tcp=True)
        assert addresses(tcp_response) == {"192.0.2.4"}
    finally:
        await forwarder.close()


async def test_servfail_upstream_skipped() -> None:
    broken, good = Upstream(RECORDS), Upstream(RECORDS)
    broken.servfail.add("www.example.")
    await broken.start()
    await good.start()
    forwarder = Forwarder([("127.0.0.1", broken.port), ("127.0.0.1", good.port)], networks=LOCAL)
    try:
        response = await forwarder.forward(query("www.example."), tcp=False)
        assert response.rcode() == dns.rcode.NOERROR and addresses(response) == {"192.0.2.1"}
        assert broken.count("www.example.") == 1 and good.count("www.example.") == 1
    finally:
        await forwarder.close()
        await broken.stop()
        await good.stop()


async def test_concurrent_misses_coalesced(fwd: Forwarder, upstream: Upstream) -> None:
    upstream.held.add("slow.example.")
    queries = [query("slow.example.") for _ in range(20)]
    tasks = [asyncio.create_task(fwd.forward(q, tcp=False)) for q in queries]
    await poll_until(lambda: fwd.coalesced == 19, "19 queries waiting on the first", 5)
    assert upstream.count("slow.example.") == 1
    upstream.release.set()
    responses = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert upstream.count("slow.example.") == 1
    assert fwd.forwarded == 1
    for q, response in zip(queries, responses, strict=True):
        assert response.id == q.id
        assert addresses(response) == {"192.0.2.3"}


async def test_one_waiter_cancelled_others_answered(fwd: Forwarder, upstream: Upstream) -> None:
    upstream.held.add("slow.example.")
    first = asyncio.create_task(fwd.forward(query("slow.example."), tcp=False))
    second = asyncio.create_task(fwd.forward(query("slow.example."), tcp=False))
    await poll_until(lambda: fwd.coalesced == 1 and upstream.count("slow.example.") == 1, "both waiting", 5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    upstream.release.set()
    response = await asyncio.wait_for(second, 5)
    assert addresses(response) == {"192.0.2.3"}


async def test_close_answers_waiters_servfail(upstream: Upstream) -> None:
    forwarder = Forwarder([("127.0.0.1", upstream.port)], networks=LOCAL, timeout=5)
    upstream.held.add("slow.example.")
    waiting = asyncio.create_task(forwarder.forward(query("slow.example."), tcp=False))
    await poll_until(lambda: upstream.count("slow.example.") == 1, "query reached the upstream", 5)
    await forwarder.close()
    response = await asyncio.wait_for(waiting, 1)
    assert response.rcode() == dns.rcode.SERVFAIL


async def test_cache_is_bounded_lru(upstream: Upstream, clock: Clock) -> None:
    forwarder = Forwarder([("127.0.0.1", upstream.port)], networks=LOCAL, cache_size=2, clock=clock)
    try:
        for name in ("www.example.", "other.example.", "www.example.", "slow.example."):
            await forwarder.forward(query(name), tcp=False)
        # other.example. was least recently used when slow.example. came in.
        assert len(forwarder.cache) == 2
        await forwarder.forward(query("www.example."), tcp=False)
        assert upstream.count("www.example.") == 1
        await forwarder.forward(query("other.example."), tcp=False)
        assert upstream.count("other.example.") == 2
    finally:
        await forwarder.close()


async def test_non_query_and_transfer_not_forwarded(fwd: Forwarder, upstream: Upstream) -> None:
    axfr = await fwd.forward(query("example.", "AXFR"), tcp=True)
    assert axfr.rcode() == dns.rcode.REFUSED
    notify = query("example.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert (await fwd.forward(notify, tcp=False)).rcode() == dns.rcode.NOTIMP
    assert sum(upstream.received.values()) == 0


# ---- through the DNS process: BAY_DNS_UPSTREAMS and the recursion networks ----


async def test_the_server_forwards_for_local_clients_and_stays_authoritative(
    upstream: Upstream, fresh_stream: str, tmp_path: Path
) -> None:
    server = DnsProcess(
        fresh_stream, tmp_path / "dns", env={"BAY_DNS_UPSTREAMS": f"127.0.0.1:{upstream.port}"}
    )
    await server.start()
    try:
        first = await server.query("www.example.")
        assert addresses(first) == {"192.0.2.1"} and first.flags & dns.flags.RA
        again = await server.query("WWW.example.")
        assert addresses(again) == {"192.0.2.1"} and str(again.question[0].name) == "WWW.example."
        assert upstream.count("www.example.") == 1  # the second came from the cache
        # too big for UDP: TC through Bay, whole over TCP
        q = dns.message.make_query("big.example.", "A")
        reply, used_tcp = await dns.asyncquery.udp_with_fallback(q, "127.0.0.1", port=server.port, timeout=3)
        assert used_tcp and len(addresses(reply)) == BIG_COUNT
        # the zone is still Bay's own, never forwarded
        soa = await server.query("bay.internal.", "SOA")
        assert soa.flags & dns.flags.AA and soa.answer
        assert not any(name.endswith("bay.internal.") for _, name in upstream.received)
    finally:
        server.stop()


async def test_no_open_recursion_outside_the_configured_networks(
    upstream: Upstream, fresh_stream: str, tmp_path: Path
) -> None:
    server = DnsProcess(
        fresh_stream,
        tmp_path / "dns",
        env={
            "BAY_DNS_UPSTREAMS": f"127.0.0.1:{upstream.port}",
            "BAY_DNS_RECURSION_NETWORKS": "10.0.0.0/8",
        },
    )
    await server.start()
    try:
        refused = await server.query("www.example.")
        assert refused.rcode() == dns.rcode.REFUSED and not refused.answer
        assert upstream.count("www.example.") == 0
    finally:
        server.stop()


async def test_a_bad_upstream_setting_stops_the_server_with_the_field_named(
    fresh_stream: str, tmp_path: Path
) -> None:
    server = DnsProcess(fresh_stream, tmp_path / "dns", env={"BAY_DNS_UPSTREAMS": "not-an-address"})
    server.spawn()
    assert server.proc is not None
    code = await asyncio.to_thread(server.proc.wait, 30)
    assert code != 0
    assert "dns_upstreams" in server.log_text() and "not-an-address" in server.log_text()
