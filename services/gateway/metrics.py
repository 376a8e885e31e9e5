"""Prometheus metrics of the REST API, one registry per app (tests build several apps), with the
common series of the process (:mod:`libs.metrics`: appends, the gateway's fold, NATS). The folding
services' ``FoldStatus`` answers are relayed as ``bay_fold_sequence`` and ``bay_fold_skipped_events``
(by ``service``); the gateway's own fold is ``bay_fold_sequence{service="gateway"}`` among them."""

from __future__ import annotations

import time
from collections.abc import Mapping

from bay.v1 import fold_pb2
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.metrics import PROCESS, FoldCollector

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics", "MetricsMiddleware"]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bay_gateway_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bay_gateway_request_duration_seconds",
            "seconds from a request's arrival to its response headers (streams: to their first byte)",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "bay_gateway_requests_in_flight",
            "requests being answered (open event streams too)",
            registry=self.registry,
        )

        self.fold_skipped = Gauge(
            "bay_fold_skipped_events",
            "events a service folding the log could not decode or apply and skipped, since it started",
            ["service"],
            registry=self.registry,
        )
        self.fold_last_skipped = Gauge(
            "bay_fold_last_skipped_sequence",
            "the stream sequence of the last event a service skipped (0: none)",
            ["service"],
            registry=self.registry,
        )
        self.fold_sequence = Gauge(
            "bay_fold_sequence",
            "the last event of the log a service has folded",
            ["service"],
            registry=self.registry,
        )

        self.own_fold = FoldCollector(PROCESS, skip=frozenset({"bay_fold_sequence"}))
        for common in (PROCESS.append_seconds, PROCESS.apply_seconds, self.own_fold):
            self.registry.register(common)

    def set_folds(self, answers: Mapping[str, fold_pb2.FoldStatusReply]) -> None:
        """The folding services' answers at this scrape; one that did not answer is left out of it."""
        for gauge in (self.fold_skipped, self.fold_last_skipped, self.fold_sequence):
            gauge.clear()
        for service, reply in answers.items():
            self.fold_skipped.labels(service).set(reply.skipped)
            self.fold_last_skipped.labels(service).set(reply.last_skipped_sequence)
            self.fold_sequence.labels(service).set(reply.sequence)
        own = self.own_fold.sequence()
        if own is not None:
            self.fold_sequence.labels(PROCESS.service or "gateway").set(own)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route(scope: Scope) -> str:
    """The route's template (``/v1/groups/{name}``), never the raw path: label values stay few."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        method = scope["method"]

        async def send_and_measure(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.latency.labels(method, _route(scope)).observe(time.perf_counter() - start)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_measure)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(method, _route(scope), str(status)).inc()
