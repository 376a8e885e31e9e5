"""DNS wire format for the answers Bay builds itself (RFC 1035 section 4), and a prebuilt answer.

Answers are built once and kept as bytes: serving one is a header, the client's own question (so its
case and any 0x20 randomisation come back as sent) and a prebuilt body. Names in a body point at the
question (offset 12) or are written whole; SRV targets are never compressed (RFC 2782). Plain
queries are parsed in ``Responder.fast`` (and ``_udpfast.c``); every other message goes to dnspython.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

A, NS, SOA, AAAA, SRV, OPT, ANY = 1, 2, 6, 28, 33, 41, 255
IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
QNAME = b"\xc0\x0c"  # a pointer to the question's name
QR_AA = 0x8400
TC = 0x0200
RD = 0x0100


def name_to_wire(name: str) -> bytes:
    """An absolute name, lowercased, as labels; ValueError for an empty or long label."""
    out = bytearray()
    for label in name.strip(".").lower().split("."):
        raw = label.encode("ascii")
        if not raw or len(raw) > 63:
            raise ValueError(f"bad DNS label {label!r} in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"name too long: {name!r}")
    return bytes(out)


def wire_to_labels(wire: bytes) -> list[str]:
    """Uncompressed wire name -> its labels, lowercased, without the root."""
    labels = []
    i = 0
    while wire[i]:
        n = wire[i]
        labels.append(wire[i + 1 : i + 1 + n].decode("ascii", "replace").lower())
        i += n + 1
    return labels


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    return owner + struct.pack(">HHIH", rtype, IN, ttl, len(rdata)) + rdata


def address_record(owner: bytes, address: str, ttl: int) -> bytes:
    ip = ipaddress.ip_address(address)
    return rr(owner, A if ip.version == 4 else AAAA, ttl, ip.packed)


def srv_rdata(priority: int, weight: int, port: int, target: bytes) -> bytes:
    return struct.pack(">HHH", priority, weight, port) + target


def soa_rdata(mname: bytes, rname: bytes, serial: int, minimum: int) -> bytes:
    # refresh, retry and expire matter to secondaries only; there are none
    return mname + rname + struct.pack(">IIIII", serial & 0xFFFFFFFF, 3600, 600, 86400, minimum)


def opt_record(payload: int) -> bytes:
    """Our EDNS0 OPT record: the UDP size we accept, version 0, no flags, no options."""
    return b"\x00" + struct.pack(">HHIH", OPT, payload, 0, 0)


class Answer(NamedTuple):
    """A prebuilt answer for one (name, type): a few rotations of the same records.

    ``heads[rd | edns << 1]`` is the header after the id (flags and counts); ``bodies`` the sections
    after the question, one per rotation; ``ends[i]`` where each answer record ends in ``bodies[i]``,
    so that a truncated reply can keep the records that fit. A tuple, so that the C fast path
    (``_udpfast.c``) reads ``bodies`` and ``heads`` by position: keep their places (2 and 4).
    """

    rcode: int
    counts: tuple[int, int, int]  # answer, authority, additional (without OPT)
    bodies: tuple[bytes, ...]
    ends: tuple[tuple[int, ...], ...]
    heads: tuple[bytes, bytes, bytes, bytes]

    @staticmethod
    def build(
        rcode: int, rotations: list[list[bytes]], authority: list[bytes], additional: list[bytes]
    ) -> Answer:
        tail = b"".join(authority) + b"".join(additional)
        bodies, ends = [], []
        for answers in rotations or [[]]:
            offsets, at = [], 0
            for record in answers:
                at += len(record)
                offsets.append(at)
            bodies.append(b"".join(answers) + tail)
            ends.append(tuple(offsets))
        counts = (len(rotations[0]) if rotations else 0, len(authority), len(additional))
        return Answer(rcode, counts, tuple(bodies), tuple(ends), _heads(rcode, counts))

    def truncated(self, turn: int, rd: int, question: bytes, qid: bytes, limit: int, opt: bytes) -> bytes:
        """TC set, and as many whole answer records as fit in ``limit``; no other sections."""
        i = turn % len(self.bodies)
        room = limit - 12 - len(question) - len(opt)
        kept = 0
        for end in self.ends[i]:
            if end > room:
                break
            kept = end
        n = sum(1 for end in self.ends[i] if end <= kept)
        flags = QR_AA | TC | rd | self.rcode
        head = struct.pack(">HHHHH", flags, 1, n, 0, 1 if opt else 0)
        return qid + head + question + self.bodies[i][:kept] + opt


def _heads(rcode: int, counts: tuple[int, int, int]) -> tuple[bytes, bytes, bytes, bytes]:
    an, ns, ar = counts
    return tuple(  # type: ignore[return-value]
        struct.pack(">HHHHH", QR_AA | (RD if k & 1 else 0) | rcode, 1, an, ns, ar + (k >> 1))
        for k in range(4)
    )
