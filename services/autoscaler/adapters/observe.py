"""Build a group's Observation from the sources: usage (cpu, memory), pushed custom metrics,
Prometheus scrapes of the ready tasks, JetStream backlogs. Missing data stays missing (None or an
absent task), never 0: the domain must not scale down on a source that went quiet."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bay.v1 import autoscale_pb2

from libs.events import subjects
from libs.samples.pushed import PushedMetrics
from libs.samples.usage import Kind, UsageWindow
from libs.views import tasks as tv
from services.autoscaler.domain import MetricSample, Observation
from services.autoscaler.sources.backlog import read_backlog
from services.autoscaler.sources.prometheus import PrometheusScraper, Target
from services.autoscaler.sources.promtext import Selector

log = logging.getLogger("bay.autoscaler.observe")


@dataclass(frozen=True)
class Observed:
    """An observation, and why each metric without data has none (metric key -> the source's
    words, for status: "backlog jobs/worker: stream not found")."""

    observation: Observation
    missing: dict[str, str] = field(default_factory=dict)


Sampled = tuple[MetricSample | None, str]  # a sample, or None and why


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
        self,
        group: str,
        policy: autoscale_pb2.AutoscalePolicy,
        current: int,
        ready: Sequence[tv.Task],
        ready_since: Mapping[str, float] | None = None,
    ) -> Observed:
        """``ready_since``: since when each ready task is ready (unix seconds): its cpu before that,
        the start-up's, is not counted."""
        ids = frozenset(t.id for t in ready)
        samples: dict[str, MetricSample] = {}
        missing: dict[str, str] = {}
        for m in policy.metrics:
            key = m.name or m.kind
            sample, why = await self._sample(group, m, ids, ready, ready_since or {})
            if sample is not None:
                samples[key] = sample
            else:
                missing[key] = why
        return Observed(Observation(current=current, ready=ids, samples=samples), missing)

    async def _sample(
        self,
        group: str,
        m: autoscale_pb2.MetricTarget,
        ids: frozenset[str],
        ready: Sequence[tv.Task],
        ready_since: Mapping[str, float],
    ) -> Sampled:
        if m.kind in ("cpu", "memory"):
            return self._usage(group, m.kind, ids, ready_since)
        if m.kind == "backlog":
            if self.js is None:
                return None, "no JetStream to read the backlog from"
            b = await read_backlog(self.js, m.backlog.stream, m.backlog.consumer)
            if b.pending is None:
                return None, f"{m.backlog.stream}/{m.backlog.consumer}: {b.error}"
            return MetricSample(total=float(b.pending)), ""
        per_task = m.per_task if m.HasField("per_task") else True
        name = m.name or m.kind
        if m.WhichOneof("source") == "prometheus":
            values, why = await self._scrape(m.prometheus, ready)
            if not values:
                return None, why
            if per_task:
                return MetricSample(per_task=dict(values)), ""
            return MetricSample(total=sum(values.values())), ""
        subject = subjects.metric(group, name)
        if per_task:
            found = {t: v for t, v in self.pushed.task_values(group, name).items() if t in ids}
            if found:
                return MetricSample(per_task=dict(found)), ""
            return None, f"no ready task's value on {subject} in {self.pushed.stale_after:g} s"
        total = self.pushed.group_value(group, name)
        if total is not None:
            return MetricSample(total=total), ""
        last = self.pushed.reading(group, name)
        if last is None:
            return None, f"nothing pushed on {subject}"
        return None, f"last value on {subject} {self.pushed.clock() - last.at:.0f} s ago"

    def _usage(self, group: str, kind: str, ids: frozenset[str], ready_since: Mapping[str, float]) -> Sampled:
        if not ids:
            return None, "no ready task"
        now = self.usage.clock()
        kind_: Kind = "cpu" if kind == "cpu" else "mem"
        span = self.usage_span(group)
        values = self.usage.values(group, now - span, kind_, ids, ready_since)
        if values:
            return MetricSample(per_task=dict(values)), ""
        last = self.usage.last_arrival(group)
        if last is None:
            return None, "no usage sample of the group yet"
        age = now - last
        return None, f"no usage sample of a ready task in {span:.3g} s (last {age:.0f} s ago)"

    def usage_span(self, group: str) -> float:
        """The seconds a task's usage is averaged over: ``usage_seconds``, or two of the group's
        publishing periods where its scheduler publishes less often than that allows (a slower
        BAY_USAGE_INTERVAL_SECONDS must not leave every other evaluation without samples)."""
        period = self.usage.period(group)
        return max(self.usage_seconds, 2 * period) if period is not None else self.usage_seconds

    async def _scrape(
        self, p: autoscale_pb2.PrometheusSource, ready: Sequence[tv.Task]
    ) -> tuple[dict[str, float], str]:
        path = p.path or "/metrics"
        scraper = self._scrapers.get(path)
        if scraper is None:
            scraper = self._scrapers[path] = PrometheusScraper(path=path, timeout=self._timeout)
        targets = [Target(t.id, t.host, t.ports[p.port_name]) for t in ready if p.port_name in t.ports]
        if not targets:
            return {}, f"no ready task with a port {p.port_name!r} to scrape"
        try:
            selector = Selector(p.metric, dict(p.labels))
        except ValueError as exc:
            log.warning("prometheus selector: %s", exc)
            return {}, f"selector: {exc}"
        scraped = await scraper.scrape(targets, selector)
        if scraped.values or not scraped.missing:
            return scraped.values, f"no {p.metric} on port {p.port_name!r}"
        task, why = next(iter(sorted(scraped.missing.items())))
        more = f" (and {len(scraped.missing) - 1} more)" if len(scraped.missing) > 1 else ""
        return {}, f"{task}: {why}{more}"

    async def aclose(self) -> None:
        for s in self._scrapers.values():
            await s.aclose()
