"""The deployer's Prometheus series.

At scrape time, from the fold: ``bay_deployments{state}`` (every deployment the log holds, by state;
each state given, 0 included) and ``bay_deployment_deadline_timestamp_seconds{group,deployment}``
(deployments whose progress deadline runs: when it falls, the rule of ``domain/plan.py``). Counted
live: ``bay_deployments_total{outcome}`` (deployments that ended while this process ran, by how).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from libs.views.deployments import ENDED, Deployment
from services.deployer.domain.plan import progress_deadline
from services.deployer.service_layer.view import DeployerView

STATES = ("running", "paused", *sorted(ENDED))


class DeployerMetrics(Collector):
    def __init__(self, view: Callable[[], DeployerView], registry: CollectorRegistry) -> None:
        self.view = view
        self.finished = Counter(
            "bay_deployments", "deployments that ended, by outcome", ["outcome"], registry=registry
        )
        registry.register(self)

    def deployment_changed(self, before: Deployment | None, after: Deployment) -> None:
        if after.ended and (before is None or not before.ended):
            self.finished.labels(after.state).inc()

    def collect(self) -> Iterable[Metric]:
        by_state = GaugeMetricFamily("bay_deployments", "deployments by state", labels=["state"])
        deadlines = GaugeMetricFamily(
            "bay_deployment_deadline_timestamp_seconds",
            "when a running deployment's progress deadline falls (unix seconds)",
            labels=["group", "deployment"],
        )
        counts = dict.fromkeys(STATES, 0)
        for d in self.view().deployments.by_id.values():
            counts[d.state] = counts.get(d.state, 0) + 1
            if d.state == "running" and (due := progress_deadline(d)) is not None:
                deadlines.add_metric([d.group, d.id], due)
        for state, n in counts.items():
            by_state.add_metric([state], n)
        yield from (by_state, deadlines)

    def describe(self) -> Iterable[Metric]:
        return []
