"""The autoscaler's Prometheus series, per group with a policy.

At scrape time: ``bay_autoscaler_desired_instances`` (the count its last evaluation chose; the group's
own count before the first), ``bay_autoscaler_max_instances`` (the policy's max) and
``bay_autoscaler_at_max`` (1 while the metrics ask for more tasks than the max allows: the last
recommendation, before the max clamps it, is above it). Counted live:
``bay_autoscaler_decisions_total{direction}`` (decisions that changed the count, up or down, folded
while this process ran).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.autoscaler.domain import Decision
from services.autoscaler.service_layer.autoscaler import Autoscaler


class AutoscalerMetrics(Collector):
    def __init__(self, autoscaler: Autoscaler, registry: CollectorRegistry) -> None:
        self.autoscaler = autoscaler
        self.decisions = Counter(
            "bay_autoscaler_decisions",
            "decisions that changed a group's count, by direction",
            ["group", "direction"],
            registry=registry,
        )
        registry.register(self)

    def decided(self, group: str, d: Decision) -> None:
        if d.changed:
            self.decisions.labels(group, "up" if d.to > d.frm else "down").inc()

    def collect(self) -> Iterable[Metric]:
        a = self.autoscaler
        labels = ["group"]
        desired = GaugeMetricFamily(
            "bay_autoscaler_desired_instances", "the count the autoscaler wants for the group", labels=labels
        )
        most = GaugeMetricFamily("bay_autoscaler_max_instances", "the group's policy's max", labels=labels)
        at_max = GaugeMetricFamily(
            "bay_autoscaler_at_max", "1 while the metrics ask for more than the max, else 0", labels=labels
        )
        view = a.view
        for group, scaled in view.scaled.items():
            now = a.now.get(group)
            latest = now.latest if now is not None else None
            if latest is not None:
                want: int | None = latest.to
            else:
                g = view.live_group(group)
                want = g.instances if g is not None else None
            if want is not None:
                desired.add_metric([group], want)
            top = scaled.policy.max
            most.add_metric([group], top)
            asks = latest.recommendation if latest is not None else None
            at_max.add_metric([group], 1.0 if asks is not None and asks > top else 0.0)
        yield from (desired, most, at_max)

    def describe(self) -> Iterable[Metric]:
        return []
