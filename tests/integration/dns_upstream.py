"""A small real upstream DNS server on 127.0.0.1 (UDP and TCP on one port) for the forwarder's tests,
and a clock they move by hand."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

SOA = "ns.example. hostmaster.example. 1 3600 600 86400 30"  # negative TTL (minimum) 30
BIG_COUNT = 60  # enough A records that the answer does not fit 512 bytes


class Upstream:
    """A tiny authoritative-style DNS server for ``example.``: names from ``records``, NXDOMAIN
    (with the SOA) for others, NODATA for known names of other types. ``big.example.`` is truncated
    over UDP, ``silent.example.`` gets no answer, names in ``servfail`` get SERVFAIL, and names in
    ``held`` are answered only once ``release`` is set."""

    def __init__(self, records: dict[tuple[str, str], tuple[int, list[str]]]) -> None:
        self.records = {
            (dns.name.from_text(name), dns.rdatatype.from_text(rdtype)): value
            for (name, rdtype), value in records.items()
        }
        self.servfail: set[str] = set()
        self.held: set[str] = set()
        self.release = asyncio.Event()
        self.received: Counter[tuple[str, str]] = Counter()  # (transport, lowercased name)
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def count(self, name: str, transport: str = "udp") -> int:
        return self.received[(transport, name)]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # UDP and TCP must share the port; another process may hold it for TCP, so try again.
        for _ in range(50):
            udp, _proto = await loop.create_datagram_endpoint(
                lambda: _UdpSide(self), local_addr=("127.0.0.1", 0)
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            return
        raise RuntimeError("no port free for both UDP and TCP")

    async def stop(self) -> None:
        self.release.set()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def answer(self, wire: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower()
        self.received[(transport, name)] += 1
        if name == "silent.example.":
            return None
        if name in self.held:
            await self.release.wait()
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if name == "big.example." and transport == "udp":
            response.flags |= dns.flags.TC
            return response.to_wire()
        key = (question.name.canonicalize(), question.rdtype)
        if key in self.records:
            ttl, texts = self.records[key]
            response.answer.append(dns.rrset.from_text_list(question.name, ttl, "IN", question.rdtype, texts))
        else:
            known = any(owner == question.name for owner, _ in self.records)
            if not known:
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(dns.rrset.from_text("example.", 600, "IN", "SOA", SOA))
        return response.to_wire()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                reply = await self.answer(await reader.readexactly(length), "tcp")
                if reply is not None:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UdpSide(asyncio.DatagramProtocol):
    def __init__(self, server: Upstream) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.answer(data, "udp")
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RECORDS = {
    ("www.example.", "A"): (300, ["192.0.2.1"]),
    ("www.example.", "AAAA"): (300, ["2001:db8::1"]),
    ("long.example.", "A"): (86400, ["192.0.2.2"]),
    ("slow.example.", "A"): (300, ["192.0.2.3"]),
    ("other.example.", "A"): (300, ["192.0.2.4"]),
    ("big.example.", "A"): (300, [f"192.0.2.{i}" for i in range(1, BIG_COUNT + 1)]),
}
