"""Client load as a service's users make it: before each request, find the service through Bay DNS
(SRV, the answer kept for its TTL as a caching resolver would), pick a task by the SRV weights
(RFC 2782), send it an HTTP request, and record which build answered or how the request failed.

Used by the deployment tests and benchmarks: a deployment is good for clients when ``failures`` stays
empty, and the builds answering follow its steps.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import dns.asyncquery
import dns.message
import dns.rdatatype
import httpx


@dataclass(frozen=True)
class Answer:
    at: float  # monotonic
    build: str  # the body the task answered (its build), "" for a failure
    error: str = ""


@dataclass
class Cached:
    expires: float
    targets: list[tuple[int, int, str, int]]  # priority, weight, address, port


@dataclass
class DnsLoad:
    """``await load.run(stop)`` sends requests until ``stop`` is set; ``answers`` holds them all."""

    dns_addr: tuple[str, int]
    srv_name: str  # e.g. "_http._tcp.web.bay.internal."
    path: str = "/build.txt"
    workers: int = 4
    timeout: float = 2.0
    interval: float = 0.01  # each worker's pace between requests (a load generator's rate, not a wait)
    seed: int = 1
    answers: list[Answer] = field(default_factory=list)
    resolutions: int = 0  # DNS queries sent (cache misses)
    _cache: Cached | None = None
    _rng: random.Random = field(default_factory=random.Random)
    _resolved: asyncio.Event = field(default_factory=asyncio.Event)
    _answered: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.error]

    def builds_since(self, since: float) -> Counter[str]:
        return Counter(a.build for a in self.answers if a.at >= since and not a.error)

    async def _resolve(self) -> list[tuple[int, int, str, int]]:
        now = time.monotonic()
        if self._cache is not None and now < self._cache.expires:
            return self._cache.targets
        query = dns.message.make_query(self.srv_name, dns.rdatatype.SRV)
        reply = await dns.asyncquery.udp(query, self.dns_addr[0], port=self.dns_addr[1], timeout=2.0)
        self.resolutions += 1
        addresses: dict[str, str] = {}
        for rrset in reply.additional:
            if rrset.rdtype == dns.rdatatype.A:
                addresses[rrset.name.to_text()] = rrset[0].address
        targets = []
        ttl = 0
        for rrset in reply.answer:
            if rrset.rdtype != dns.rdatatype.SRV:
                continue
            ttl = rrset.ttl
            for srv in rrset:
                host = srv.target.to_text()
                targets.append((srv.priority, srv.weight, addresses.get(host, "127.0.0.1"), srv.port))
        # a caching resolver keeps the answer for its TTL (negative answers too, per the SOA)
        self._cache = Cached(now + max(ttl, 1), targets)
        self._resolved.set()
        return targets

    async def fresh(self, timeout: float = 30.0) -> float:
        """Wait for the next DNS resolution (the cached answer expired); when it was made. Answers
        after it reflect the DNS answer as of then."""
        self._resolved.clear()
        await asyncio.wait_for(self._resolved.wait(), timeout)
        return time.monotonic()

    def answers_since(self, since: float) -> int:
        return sum(1 for a in self.answers if a.at >= since)

    async def until_count(self, since: float, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` answers have come since ``since``."""

        async def scan() -> None:
            while self.answers_since(since) < count:
                self._answered.clear()
                await self._answered.wait()

        await asyncio.wait_for(scan(), timeout)

    async def until_only(self, build: str, last: int = 40, timeout: float = 30.0) -> None:
        """Until the last ``last`` answers all came from ``build``."""

        async def scan() -> None:
            while True:
                recent = self.answers[-last:]
                if len(recent) == last and all(a.build == build for a in recent):
                    return
                self._answered.clear()
                await self._answered.wait()

        await asyncio.wait_for(scan(), timeout)

    def _pick(self, targets: list[tuple[int, int, str, int]]) -> tuple[str, int]:
        """RFC 2782: the lowest priority, then a weighted random choice."""
        best = min(p for p, _, _, _ in targets)
        among = [t for t in targets if t[0] == best]
        total = sum(w for _, w, _, _ in among)
        if total == 0:
            chosen = self._rng.choice(among)
        else:
            point = self._rng.uniform(0, total)
            for chosen in among:
                point -= chosen[1]
                if point <= 0:
                    break
        return chosen[2], chosen[3]

    async def target(self) -> tuple[str, int] | None:
        """A task to send a request to, as ``run`` picks one: the SRV answer (kept for its TTL), then
        a weighted pick; None when the answer names no task. A DNS failure raises."""
        targets = await self._resolve()
        return self._pick(targets) if targets else None

    def _record(self, answer: Answer) -> None:
        self.answers.append(answer)
        self._answered.set()

    async def _one(self, http: httpx.AsyncClient) -> None:
        try:
            targets = await self._resolve()
        except Exception as exc:  # a DNS failure is a failed request too
            self._record(Answer(time.monotonic(), "", f"dns: {exc!r}"))
            return
        if not targets:
            self._record(Answer(time.monotonic(), "", "dns: no task answered"))
            return
        addr, port = self._pick(targets)
        try:
            resp = await http.get(f"http://{addr}:{port}{self.path}")
        except httpx.HTTPError as exc:
            self._record(Answer(time.monotonic(), "", f"{addr}:{port}: {exc!r}"))
            return
        if resp.status_code != 200:
            self._record(Answer(time.monotonic(), "", f"{addr}:{port}: HTTP {resp.status_code}"))
            return
        self._record(Answer(time.monotonic(), resp.text.strip()))

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as http:

            async def worker() -> None:
                while not stop.is_set():
                    await self._one(http)
                    await asyncio.sleep(self.interval)

            await asyncio.gather(*(worker() for _ in range(self.workers)))
