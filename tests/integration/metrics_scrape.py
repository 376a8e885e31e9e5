"""Scraping a process's ``/metrics`` as Prometheus would: real HTTP, parsed by prometheus_client's
text parser (a page it cannot parse fails the test)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    text: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample of that name whose labels include ``labels`` (None: none; several: their sum)."""
        want = set(labels.items())
        found = [v for (n, ls), v in self.samples.items() if n == name and want <= ls]
        return sum(found) if found else None

    def labelsets(self, name: str) -> list[dict[str, str]]:
        return [dict(ls) for (n, ls) in self.samples if n == name]


async def scrape(address: str, path: str = "/metrics", timeout: float = 5.0) -> Scrape:
    async with httpx.AsyncClient(timeout=timeout) as client:
        resp = await client.get(f"http://{address}{path}")
    resp.raise_for_status()
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(resp.text):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return Scrape(resp.text, samples, types)


async def try_scrape(address: str) -> Scrape | None:
    """None while nothing answers there yet."""
    try:
        return await scrape(address)
    except httpx.HTTPError:
        return None
