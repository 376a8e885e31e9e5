"""Forwarding of names outside ``bay.internal.`` to upstream resolvers, with a cache.

Bay DNS may be a host's only resolver, so queries it is not authoritative for go to the configured
upstreams (``BAY_DNS_UPSTREAMS``). To stay a forwarder and not an open resolver, the server asks
:meth:`Forwarder.allowed` first; only clients in the configured networks are forwarded for.

Answers are cached per (name, type, class): positive ones for the smallest TTL of the answer RRs,
negative ones (NXDOMAIN, NODATA) by the SOA in the authority section (RFC 2308); SERVFAIL never.
Identical misses in flight share one upstream exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from libs.addresses import parse_host_port
from libs.errors import ValidationFailed

log = logging.getLogger("bay.dns.forward")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
CacheKey = tuple[dns.name.Name, dns.rdatatype.RdataType, dns.rdataclass.RdataClass]

# Small enough to avoid IP fragmentation on the way back from the upstream (DNS flag day 2020).
UPSTREAM_PAYLOAD = 1232
# Errors of one upstream exchange; any of them means "try the next upstream".
_EXCHANGE_ERRORS = (dns.exception.DNSException, OSError, EOFError, ValueError)
# Answers that say nothing about the name: another upstream may do better.
_RETRY_RCODES = frozenset({dns.rcode.SERVFAIL, dns.rcode.REFUSED})
_NO_FORWARD_TYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})


def parse_upstreams(text: str) -> list[tuple[str, int]]:
    """``"1.2.3.4, [::1]:5300, 10.0.0.1:53"`` -> ``[(host, port)]``, port 53 unless given.

    Upstreams must be IP addresses: resolving a name would need a resolver, which is what we are."""
    result: list[tuple[str, int]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            result.append(_parse_upstream(item))
        except ValueError as e:
            raise ValueError(f"bad DNS upstream {item!r}: {e}") from None
    return result


def _parse_upstream(item: str) -> tuple[str, int]:
    try:
        host, port = parse_host_port(item, 53, field="BAY_DNS_UPSTREAMS")
    except ValidationFailed as exc:
        raise ValueError(exc.violations[0].description) from None
    return str(ipaddress.ip_address(host)), port


def parse_networks(text: str) -> list[IPNetwork]:
    """Comma separated CIDRs (host bits allowed, a bare address is a /32 or /128)."""
    result: list[IPNetwork] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            result.append(ipaddress.ip_network(item, strict=False))
        except ValueError as e:
            raise ValueError(f"bad network {item!r}: {e}") from None
    return result


@dataclass(frozen=True)
class _Entry:
    """An upstream answer and how long it may be served; ``message`` is never mutated."""

    message: dns.message.Message
    stored_at: float
    ttl: int  # seconds the entry may be served; 0 = not cacheable


class _Cache:
    """Bounded LRU of upstream answers with expiry by the injected clock."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() >= entry.stored_at + entry.ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: CacheKey, entry: _Entry) -> None:
        if self.size <= 0 or entry.ttl <= 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def cache_ttl(message: dns.message.Message, *, max_ttl: float, negative_ttl: float) -> int:
    """Seconds an upstream answer may be cached; 0 when it must not be."""
    rcode = message.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or message.flags & dns.flags.TC:
        return 0
    answer_ttls = [rrset.ttl for rrset in message.answer]
    if rcode == dns.rcode.NOERROR and answer_ttls:
        return int(min(min(answer_ttls), max_ttl))
    # NXDOMAIN or NODATA: without an SOA nothing says how long the absence holds (RFC 2308 §5).
    soa_ttls = [
        min(rrset.ttl, rrset[0].minimum)
        for rrset in message.authority
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset) > 0
    ]
    if not soa_ttls:
        return 0
    # An NXDOMAIN after a CNAME chain: the chain's records must not outlive their own TTLs either.
    return int(min(*soa_ttls, *answer_ttls, negative_ttl))


class _UdpExchange(asyncio.DatagramProtocol):
    """One query over a connected UDP socket: the kernel drops datagrams from other addresses, and
    an ICMP port-unreachable from a down upstream arrives as an error at once instead of a timeout."""

    def __init__(self, query: dns.message.Message) -> None:
        self.query = query
        self.answer: asyncio.Future[dns.message.Message] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.answer.done():
            return
        try:
            message = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # garbage is not an answer; keep waiting for the real one until the timeout
        if self.query.is_response(message):
            self.answer.set_result(message)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("UDP socket closed"))


class Forwarder:
    """Forwards queries to ``upstreams`` in order, caching answers; see the module docstring."""

    def __init__(
        self,
        upstreams: list[tuple[str, int]],
        *,
        networks: list[IPNetwork],
        cache_size: int = 10_000,
        timeout: float = 2.0,
        max_ttl: float = 3600.0,
        negative_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not upstreams:
            raise ValueError("Forwarder needs at least one upstream")
        self.upstreams = list(upstreams)
        self.networks = list(networks)
        self.timeout = timeout
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self.cache = _Cache(cache_size, clock)
        self._inflight: dict[CacheKey, asyncio.Task[_Entry | None]] = {}
        self.forwarded = 0  # queries sent to upstreams (a TCP retry after TC counts again)
        self.cache_hits = 0  # client queries answered from the cache
        self.coalesced = 0  # client queries that waited for an identical query already in flight
        self.failures = 0  # client queries answered SERVFAIL because no upstream answered

    def allowed(self, client_ip: str) -> bool:
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    async def forward(self, query: dns.message.Message, *, tcp: bool) -> dns.message.Message:
        if dns.opcode.from_flags(query.flags) != dns.opcode.QUERY:
            return self._reply(query, dns.rcode.NOTIMP)
        if len(query.question) != 1:
            return self._reply(query, dns.rcode.FORMERR)
        question = query.question[0]
        if question.rdtype in _NO_FORWARD_TYPES:
            return self._reply(query, dns.rcode.REFUSED)
        key: CacheKey = (question.name.canonicalize(), question.rdtype, question.rdclass)

        entry = self.cache.get(key)
        if entry is not None:
            self.cache_hits += 1
            return self._from_entry(query, entry)

        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._resolve(key, tcp), name=f"dns-forward {key[0]}")
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        else:
            self.coalesced += 1
        try:
            # Shielded: one client giving up must not cancel the exchange the others wait for.
            entry = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or current.cancelling() == 0):
                entry = None  # close() stopped the exchange; this client still gets an answer
            else:
                raise
        if entry is None:
            self.failures += 1
            return self._reply(query, dns.rcode.SERVFAIL)
        return self._from_entry(query, entry)

    def _done(self, key: CacheKey, _task: asyncio.Task[_Entry | None]) -> None:
        self._inflight.pop(key, None)

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.cache.clear()

    async def _resolve(self, key: CacheKey, tcp: bool) -> _Entry | None:
        name, rdtype, rdclass = key
        for host, port in self.upstreams:
            upstream_query = dns.message.make_query(
                name, rdtype, rdclass, use_edns=0, payload=UPSTREAM_PAYLOAD
            )
            try:
                async with asyncio.timeout(self.timeout):
                    answer = await self._exchange(upstream_query, host, port, tcp)
            except _EXCHANGE_ERRORS as e:
                log.debug("upstream %s:%s failed for %s: %r", host, port, name, e)
                continue
            if answer.rcode() in _RETRY_RCODES:
                rcode = dns.rcode.to_text(answer.rcode())
                log.debug("upstream %s:%s answered %s for %s", host, port, rcode, name)
                continue
            ttl = cache_ttl(answer, max_ttl=self.max_ttl, negative_ttl=self.negative_ttl)
            entry = _Entry(answer, self.clock(), ttl)
            self.cache.put(key, entry)
            return entry
        log.info("no upstream answered %s %s", name, dns.rdatatype.to_text(rdtype))
        return None

    async def _exchange(
        self, query: dns.message.Message, host: str, port: int, tcp: bool
    ) -> dns.message.Message:
        if not tcp:
            answer = await self._udp(query, host, port)
            if not answer.flags & dns.flags.TC:
                return answer
        self.forwarded += 1
        return await dns.asyncquery.tcp(query, host, port=port)

    async def _udp(self, query: dns.message.Message, host: str, port: int) -> dns.message.Message:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(query), remote_addr=(host, port)
        )
        try:
            transport.sendto(query.to_wire())
            self.forwarded += 1
            return await protocol.answer
        finally:
            transport.close()

    def _reply(self, query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
        response = dns.message.make_response(query, recursion_available=True, our_payload=UPSTREAM_PAYLOAD)
        response.set_rcode(rcode)
        return response

    def _from_entry(self, query: dns.message.Message, entry: _Entry) -> dns.message.Message:
        """The cached answer dressed for this client: its id, its question as asked, our flags, and
        TTLs no longer than the entry lives, minus the time it has spent in the cache."""
        response = self._reply(query, entry.message.rcode())
        age = max(0, math.floor(self.clock() - entry.stored_at))
        limit = entry.ttl if entry.ttl > 0 else None

        def aged(section: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
            copies = []
            for rrset in section:
                ttl = rrset.ttl if limit is None else min(rrset.ttl, limit)
                copy = rrset.copy()
                copy.ttl = max(0, ttl - age)
                copies.append(copy)
            return copies

        response.answer = aged(entry.message.answer)
        response.authority = aged(entry.message.authority)
        response.additional = aged(entry.message.additional)
        return response
