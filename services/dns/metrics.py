"""``bay_dns_queries_total{rcode}``: the answers this process gave, by answer code (lower case, as
dnspython names them: noerror, nxdomain, servfail, refused, formerr, notimp, badvers...).

Counted where they are made at next to no cost: the Python fast path bumps one list item per answer
(it counted its answers already; the count is now split by rcode), the C fast path counts in C
(``udpfast.rcodes``), the slow path (dnspython) counts each reply it renders. Summed at scrape time.
A query dropped unanswered (a response, a header too short) is not counted. With ``BAY_DNS_WORKERS``
above 1, the other worker processes serve no metrics: this counts the first process's answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import dns.rcode
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from services.dns import udpfast
from services.dns.responder import Responder

#: always given (0 included), so that a rate over them is defined before the first one
ALWAYS = (0, 1, 2, 3, 4, 5)


class DnsMetrics(Collector):
    def __init__(
        self,
        responder: Responder,
        registry: CollectorRegistry,
        c_counts: Callable[[], tuple[int, ...]] = udpfast.rcodes,
    ) -> None:
        self.responder = responder
        self.c_counts = c_counts
        registry.register(self)

    def collect(self) -> Iterable[Metric]:
        counts = dict.fromkeys(ALWAYS, 0)
        for code, n in enumerate(self.responder.fast_rcodes):
            if n:
                counts[code] = counts.get(code, 0) + n
        for code, n in enumerate(self.c_counts()):
            if n:
                counts[code] = counts.get(code, 0) + n
        for code, n in self.responder.slow_rcodes.items():
            counts[code] = counts.get(code, 0) + n
        family = CounterMetricFamily(
            "bay_dns_queries", "DNS answers given by this process, by answer code", labels=["rcode"]
        )
        for code, n in sorted(counts.items()):
            family.add_metric([_name(code)], n)
        yield family

    def describe(self) -> Iterable[Metric]:
        return []


def _name(code: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(code)).lower()
    except ValueError:
        return f"rcode{code}"
