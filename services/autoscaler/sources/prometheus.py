"""Scraping a group's tasks for one Prometheus metric: ``GET http://<host>:<port><path>`` of each
ready task, parsed by :mod:`promtext`, one value per task.

A task's value is missing (in :attr:`Scraped.missing`, with the reason) when its endpoint refuses,
answers late, answers anything but 200, sends more than ``max_bytes`` (counted after any gzip is
undone, so a small compressed bomb is cut off too), sends text that is not the format (only the
selected metric's lines and lines that name no metric are read: another metric's broken line does
not cost this one), or has no series the selector picks. Missing is never zero: the decision logic
must tell "idle" from "unknown".

Time: each task's request is bounded as a whole (connect, headers and body) by ``timeout``, not
per read, so an endpoint that trickles a byte a second still ends on time; at most
``concurrency`` requests run at once, so a round of ``n`` tasks takes at most about
``ceil(n / concurrency) * timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from services.autoscaler.sources.promtext import ExpositionError, Selector, parse, select, wanted_names

log = logging.getLogger("bay.autoscaler.prometheus")

DEFAULT_TIMEOUT = 1.0  # seconds per task, whole request
DEFAULT_MAX_BYTES = 1 << 20  # 1 MiB of exposition text per task
DEFAULT_CONCURRENCY = 16
ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"


@dataclass(frozen=True)
class Target:
    """One ready task's metrics endpoint."""

    task_id: str
    host: str
    port: int


@dataclass
class Scraped:
    """One round: ``values`` of the tasks that gave one; ``missing`` task id -> why not."""

    values: dict[str, float] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


class _TooLarge(Exception):
    pass


class _Status(Exception):
    pass


class PrometheusScraper:
    """One HTTP client for every round (its connections are kept between rounds); ``aclose()`` at the
    end. The environment's proxies are not used: task endpoints are on the cluster's own network."""

    def __init__(
        self,
        *,
        path: str = "/metrics",
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"metrics path must start with '/': {path!r}")
        if timeout <= 0 or max_bytes <= 0 or concurrency <= 0:
            raise ValueError("timeout, max_bytes and concurrency must be positive")
        self.path = path
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._limit = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"Accept": ACCEPT},
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> PrometheusScraper:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def scrape(self, targets: Iterable[Target], selector: Selector) -> Scraped:
        """Every target at once (within the concurrency limit); never raises for a task's failure."""
        targets = list(targets)
        results = await asyncio.gather(*(self._one(t, selector) for t in targets))
        out = Scraped()
        for target, (value, reason) in zip(targets, results, strict=True):
            if value is None:
                out.missing[target.task_id] = reason
            else:
                out.values[target.task_id] = value
        return out

    async def _one(self, target: Target, selector: Selector) -> tuple[float | None, str]:
        async with self._limit:
            try:
                async with asyncio.timeout(self.timeout):
                    text = await self._fetch(target)
            except TimeoutError:
                return None, f"no answer within {self.timeout}s"
            except _TooLarge:
                return None, f"more than {self.max_bytes} bytes"
            except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                return None, f"{type(exc).__name__}: {exc}"
            except _Status as exc:
                return None, str(exc)
        try:
            families = parse(text, only=wanted_names(selector))
        except ExpositionError as exc:
            return None, f"not the Prometheus text format: {exc}"
        value = select(families, selector)
        if value is None:
            return None, f"no value for {selector.name}{dict(selector.labels) or ''}"
        return value, ""

    async def _fetch(self, target: Target) -> str:
        host = f"[{target.host}]" if ":" in target.host else target.host
        url = f"http://{host}:{target.port}{self.path}"
        async with self._client.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise _Status(f"HTTP {resp.status_code}")
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise _TooLarge
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise _TooLarge
        return body.decode("utf-8", "replace")
