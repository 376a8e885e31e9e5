"""The metrics every Bay process has: one registry per process, and the event log's common series.

The shared code feeds them, so that no service repeats them: :class:`libs.eventlog.Projection`
registers itself here when it starts and times each event it folds live; the JetStream adapter times
its appends; :func:`libs.natsconn.connect` registers its connection. Every series carries the label
``service`` (the process's name, set once by :func:`libs.runtime.run_service`).

The fold's series are read at scrape time (:class:`FoldCollector`): ``bay_fold_sequence``,
``bay_fold_lag_events`` (the stream's last sequence, asked of JetStream just before the scrape is
rendered, minus the folded one), ``bay_fold_skipped_events_total`` (events skipped since the fold went
live: a replay's skips are in the log and in ``FoldStatus``, not counted again after a restart) and
``bay_nats_connected``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("bay.metrics")

# no ``*_created`` series beside every counter and histogram: they would double a page of 1,000
# groups, and Prometheus' text format does not need them
disable_created_metrics()

#: append and fold times: an append waits for JetStream's acknowledgement (ms), a fold is µs
APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
APPLY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 0.001, 0.0025, 0.01, 0.1)
LAG_TIMEOUT_SECONDS = 1.0


class Fold(Protocol):
    """What :class:`FoldCollector` reads of a projection (``libs.eventlog.Projection``)."""

    name: str
    sequence: int
    state: Any
    subject_filter: str | None
    log: Any
    live_skipped_base: int


class Connection(Protocol):
    closing: bool

    @property
    def connected(self) -> bool: ...


class ProcessMetrics:
    """The process's registry and common series (one per process: :data:`PROCESS`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.service = ""
        self.append_seconds = Histogram(
            "bay_eventlog_append_seconds",
            "seconds an append to the event log took, until JetStream acknowledged it (a batch is one)",
            ["service"],
            buckets=APPEND_BUCKETS,
            registry=None,
        )
        self.apply_seconds = Histogram(
            "bay_fold_apply_seconds",
            "seconds folding one event took, once the fold is live (a replay's events are not timed)",
            ["service"],
            buckets=APPLY_BUCKETS,
            registry=None,
        )
        self.folds: weakref.WeakSet[Any] = weakref.WeakSet()
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self.connecting = 0  # connect() calls still waiting for NATS
        self.lags: dict[str, int] = {}  # fold name -> lag at the last refresh
        self.fold_collector = FoldCollector(self)
        for c in self.common():
            self.registry.register(c)
        self._append = self.append_seconds.labels("")
        self._apply = self.apply_seconds.labels("")

    def common(self) -> list[Collector]:
        """The collectors of the common series (a registry of its own, the gateway's, takes them too)."""
        return [self.append_seconds, self.apply_seconds, self.fold_collector]

    def set_service(self, name: str) -> None:
        self.service = name
        self.append_seconds.clear()
        self.apply_seconds.clear()
        self._append = self.append_seconds.labels(name)
        self._apply = self.apply_seconds.labels(name)

    def observe_append(self, seconds: float) -> None:
        self._append.observe(seconds)

    def observe_apply(self, seconds: float) -> None:
        self._apply.observe(seconds)

    def watch_fold(self, fold: Fold) -> None:
        self.folds.add(fold)

    def watch_connection(self, conn: Connection) -> None:
        self.connections.add(conn)

    async def refresh(self) -> None:
        """What must be asked before a scrape: each fold's stream end (for its lag), in parallel,
        each within :data:`LAG_TIMEOUT_SECONDS` (one that does not answer has no lag this scrape)."""
        folds = list(self.folds)

        async def one(fold: Fold) -> None:
            try:
                last = await asyncio.wait_for(
                    fold.log.last_sequence(fold.subject_filter), LAG_TIMEOUT_SECONDS
                )
            except Exception as exc:  # NATS down or slow: said by bay_nats_connected
                log.debug("%s: the stream's end not read for the lag: %s", fold.name, exc)
                self.lags.pop(fold.name, None)
                return
            self.lags[fold.name] = max(0, int(last) - fold.sequence)

        await asyncio.gather(*(one(f) for f in folds))


class FoldCollector(Collector):
    """The folds' and NATS connections' series, read at scrape time. A process with several folds
    reports the furthest behind: the lowest sequence, the highest lag, the skips summed."""

    def __init__(self, process: ProcessMetrics, skip: frozenset[str] = frozenset()) -> None:
        self.process = process
        self.skip = skip  # families a registry has of its own (the gateway relays other folds')

    def sequence(self) -> int | None:
        """The process's folded sequence (None: it folds nothing)."""
        folds = list(self.process.folds)
        return min(f.sequence for f in folds) if folds else None

    def collect(self) -> Iterable[Metric]:
        p = self.process
        svc = [p.service]
        sequence = GaugeMetricFamily(
            "bay_fold_sequence", "the last event of the log this process has folded", labels=["service"]
        )
        lag = GaugeMetricFamily(
            "bay_fold_lag_events",
            "events of the stream this process has not folded yet (its last sequence minus the folded one)",
            labels=["service"],
        )
        skipped = CounterMetricFamily(
            "bay_fold_skipped_events",
            "events the fold could not decode or apply and skipped, since it went live",
            labels=["service"],
        )
        nats = GaugeMetricFamily(
            "bay_nats_connected", "1 while this process is connected to NATS, else 0", labels=["service"]
        )
        folds = list(p.folds)
        if folds:
            sequence.add_metric(svc, min(f.sequence for f in folds))
            skipped.add_metric(svc, sum(_live_skipped(f) for f in folds))
            lags = [p.lags[f.name] for f in folds if f.name in p.lags]
            if lags:
                lag.add_metric(svc, max(lags))
        conns = [c for c in p.connections if not c.closing]
        if conns or p.connecting:
            up = not p.connecting and all(c.connected for c in conns)
            nats.add_metric(svc, 1.0 if up else 0.0)
        yield from (m for m in (sequence, lag, skipped, nats) if m.name not in self.skip)

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time: nothing to check for duplicates at registration


def _live_skipped(fold: Fold) -> int:
    return max(0, int(getattr(fold.state, "skipped", 0)) - fold.live_skipped_base)


#: this process's metrics
PROCESS = ProcessMetrics()
