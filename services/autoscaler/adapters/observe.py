"""Build a group's Observation from the sources: usage (cpu, memory), pushed custom metrics,
Prometheus scrapes of the ready tasks, JetStream backlogs. Missing data stays missing (None or an
absent task), never 0: the domain must not scale down on a source that went quiet."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bay.v1 import autoscale_pb2

from libs.samples.pushed import PushedMetrics
from libs.samples.usage import UsageWindow
from libs.views import tasks as tv
from services.autoscaler.domain import MetricSample, Observation
from services.autoscaler.sources.backlog import read_backlog
from services.autoscaler.sources.prometheus import PrometheusScraper, Target
from services.autoscaler.sources.promtext import Selector

log = logging.getLogger("bay.autoscaler.observe")


class Observer:
    def __init__(
        self,
        usage: UsageWindow,
        pushed: PushedMetrics,
        *,
        js: Any = None,
        usage_seconds: float = 10.0,
        scraper_timeout: float = 1.0,
    ) -> None:
        self.usage = usage
        self.pushed = pushed
        self.js = js
        self.usage_seconds = usage_seconds
        self._scrapers: dict[str, PrometheusScraper] = {}
        self._timeout = scraper_timeout

    async def observe(
        self, group: str, policy: autoscale_pb2.AutoscalePolicy, current: int, ready: Sequence[tv.Task]
    ) -> Observation:
        ids = frozenset(t.id for t in ready)
        samples: dict[str, MetricSample] = {}
        for m in policy.metrics:
            key = m.name or m.kind
            sample = await self._sample(group, m, ids, ready)
            if sample is not None:
                samples[key] = sample
        return Observation(current=current, ready=ids, samples=samples)

    async def _sample(
        self, group: str, m: autoscale_pb2.MetricTarget, ids: frozenset[str], ready: Sequence[tv.Task]
    ) -> MetricSample | None:
        if m.kind in ("cpu", "memory"):
            since = self.usage.clock() - self.usage_seconds
            values = self.usage.values(group, since, "cpu" if m.kind == "cpu" else "mem", ids)
            return MetricSample(per_task=dict(values)) if values else None
        if m.kind == "backlog":
            if self.js is None:
                return None
            b = await read_backlog(self.js, m.backlog.stream, m.backlog.consumer)
            return MetricSample(total=float(b.pending)) if b.pending is not None else None
        per_task = m.per_task if m.HasField("per_task") else True
        name = m.name or m.kind
        if m.WhichOneof("source") == "prometheus":
            values = await self._scrape(m.prometheus, ready)
            if not per_task:
                return MetricSample(total=sum(values.values())) if values else None
            return MetricSample(per_task=dict(values)) if values else None
        if per_task:
            found = {t: v for t, v in self.pushed.task_values(group, name).items() if t in ids}
            return MetricSample(per_task=dict(found)) if found else None
        total = self.pushed.group_value(group, name)
        return MetricSample(total=total) if total is not None else None

    async def _scrape(self, p: autoscale_pb2.PrometheusSource, ready: Sequence[tv.Task]) -> dict[str, float]:
        path = p.path or "/metrics"
        scraper = self._scrapers.get(path)
        if scraper is None:
            scraper = self._scrapers[path] = PrometheusScraper(path=path, timeout=self._timeout)
        targets = [Target(t.id, t.host, t.ports[p.port_name]) for t in ready if p.port_name in t.ports]
        try:
            selector = Selector(p.metric, dict(p.labels))
        except ValueError as exc:
            log.warning("prometheus selector: %s", exc)
            return {}
        scraped = await scraper.scrape(targets, selector)
        return scraped.values

    async def aclose(self) -> None:
        for s in self._scrapers.values():
            await s.aclose()
