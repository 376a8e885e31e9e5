"""Request -> reply, apart from the sockets.

``fast`` answers a plain query for a name in the zone from a prebuilt answer: no message object is
made. Anything else, and names outside the zone, go to ``slow``, which parses with dnspython:
malformed -> FORMERR (or nothing, when there is no header to answer), another opcode -> NOTIMP, an
EDNS version other than 0 -> BADVERS, another class -> REFUSED, outside the zone -> forwarded for
clients in the recursion networks when upstreams are configured, else REFUSED. A response is never
answered, so two servers cannot loop.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass

from services.dns import wire
from services.dns.forward import Forwarder
from services.dns.zone import Zone

log = logging.getLogger("bay.dns")

TCP_LIMIT = 65_535
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0


@dataclass
class Counters:
    forwarded: int = 0
    refused: int = 0
    formerr: int = 0
    dropped: int = 0
    slow: int = 0  # queries dnspython parsed


class Responder:
    def __init__(self, zone: Zone, *, forwarder: Forwarder | None = None, udp_payload: int = 1232) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.udp_payload = udp_payload
        self.opt = wire.opt_record(udp_payload)
        self.origin = dns.name.from_text(zone.origin)
        self.counters = Counters()
        # answered by ``fast``, by rcode (kept outside Counters: one attribute less a query; the count
        # is the only one a fast answer costs); ``c_answered``: by the C fast path, which counts its
        # rcodes itself (``udpfast.rcodes``)
        self.fast_rcodes = [0] * 16
        self.c_answered = 0
        self.slow_rcodes: dict[int, int] = {}  # answers built by ``slow``, by (extended) rcode
        self.misses = 0  # of those, built rather than found ready
        self.turn = 0  # which prebuilt order the next answer takes (shared with the C fast path)

    @property
    def queries(self) -> int:
        """Queries answered from the zone's prebuilt answers (by ``fast`` or the C fast path)."""
        return sum(self.fast_rcodes) + self.c_answered

    def fast(self, data: bytes, tcp: bool = False) -> bytes | None:
        """The reply to a plain in-zone query; None: ask ``slow``.

        The parse is inline: this runs once a query, and a call and an object per query cost a third
        of the throughput. ``_udpfast.c`` parses the same way."""
        n = len(data)
        if n < 17 or data[2] & 0xF8 or data[4:10] != _ONE_QUESTION or data[10] or data[11] > 1:
            return None
        i = 12
        try:
            length = data[12]
            while length:
                if length > 63:
                    return None
                i += length + 1
                length = data[i]
            end = i + 5
            payload, edns = 512, 0
            if data[11]:
                if data[end] or data[end + 1] or data[end + 2] != 41 or data[end + 6]:
                    return None
                if end + 11 + (data[end + 9] << 8 | data[end + 10]) != n:
                    return None
                payload, edns = data[end + 3] << 8 | data[end + 4], 2
            elif end != n:
                return None
        except IndexError:
            return None
        key = data[12 : i + 1].lower() + data[i + 1 : end]
        answer = self.zone.cache.get(key)
        if answer is None:
            if key[-2:] != b"\x00\x01":
                return None  # not class IN
            answer = self.zone.answer(key)
            if answer is None:
                return None  # outside the zone
            self.misses += 1
        self.fast_rcodes[answer.rcode] += 1
        self.turn = turn = self.turn + 1
        bodies = answer.bodies
        rd = data[2] & 1
        opt = self.opt if edns else b""
        question = data[12:end]
        out = data[:2] + answer.heads[rd | edns] + question + bodies[turn % len(bodies)] + opt
        limit = TCP_LIMIT if tcp else min(max(payload, 512), self.udp_payload)
        if len(out) > limit:
            out = answer.truncated(turn, rd << 8, question, data[:2], limit, opt)
        return out

    async def slow(self, data: bytes, client: str, tcp: bool = False) -> bytes | None:
        """Everything ``fast`` did not answer; None: send nothing."""
        try:
            query = dns.message.from_wire(data)
        except dns.message.ShortHeader:
            self.counters.dropped += 1
            return None
        except Exception:  # dnspython raises many kinds for bad input: all are the client's fault
            return self._formerr(data)
        if query.flags & dns.flags.QR:
            self.counters.dropped += 1
            return None
        self.counters.slow += 1
        reply = dns.message.make_response(query)
        if query.opcode() != dns.opcode.QUERY:
            return self._reply(reply, dns.rcode.NOTIMP, query, tcp)
        if query.edns > 0:
            reply.use_edns(0, 0, self.udp_payload)
            return self._reply(reply, dns.rcode.BADVERS, query, tcp)
        if len(query.question) != 1:
            self.counters.formerr += 1
            return self._reply(reply, dns.rcode.FORMERR, query, tcp)
        question = query.question[0]
        if question.rdclass == dns.rdataclass.IN and question.name.is_subdomain(self.origin):
            # unusual but valid (extra records, a compressed question): answer it as the plain query
            plain = _plain_query(query)
            out = self.fast(plain, tcp)
            if out is not None:
                return out
            return self._reply(reply, dns.rcode.SERVFAIL, query, tcp)
        forwarder = self.forwarder
        if forwarder is not None and question.rdclass == dns.rdataclass.IN and forwarder.allowed(client):
            self.counters.forwarded += 1
            forwarded = await forwarder.forward(query, tcp=tcp)
            return self._render(forwarded, query, tcp)
        self.counters.refused += 1
        return self._reply(reply, dns.rcode.REFUSED, query, tcp)

    def _reply(
        self, reply: dns.message.Message, rcode: dns.rcode.Rcode, query: dns.message.Message, tcp: bool
    ) -> bytes:
        reply.set_rcode(rcode)
        return self._render(reply, query, tcp)

    def _render(self, reply: dns.message.Message, query: dns.message.Message, tcp: bool) -> bytes:
        code = int(reply.rcode())
        self.slow_rcodes[code] = self.slow_rcodes.get(code, 0) + 1
        limit = (
            TCP_LIMIT if tcp else min(max(512, query.payload if query.edns >= 0 else 512), self.udp_payload)
        )
        try:
            return reply.to_wire(max_size=limit)
        except dns.exception.TooBig:
            reply.flags |= dns.flags.TC
            for section in (reply.answer, reply.authority, reply.additional):
                section.clear()
            return reply.to_wire(max_size=limit)

    def _formerr(self, data: bytes) -> bytes | None:
        """FORMERR with the query's id and opcode when there is a header and it is not a response."""
        if len(data) < 12 or data[2] & 0x80:
            self.counters.dropped += 1
            return None
        self.counters.formerr += 1
        self.slow_rcodes[wire.FORMERR] = self.slow_rcodes.get(wire.FORMERR, 0) + 1
        flags = 0x8000 | (data[2] & 0x79) << 8 | wire.FORMERR
        return data[:2] + struct.pack(">HHHHH", flags, 0, 0, 0, 0)


def _plain_query(query: dns.message.Message) -> bytes:
    """The query with one question and at most our OPT record: what ``fast`` parses."""
    plain = dns.message.make_query(query.question[0].name, query.question[0].rdtype)
    plain.id = query.id
    plain.flags = query.flags & dns.flags.RD
    if query.edns >= 0:
        plain.use_edns(0, 0, query.payload)
    return plain.to_wire()
