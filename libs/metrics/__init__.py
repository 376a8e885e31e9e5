"""Prometheus metrics of a Bay process: one registry per process (:data:`PROCESS`), the common series
of the event log that the shared code feeds (:mod:`libs.metrics.process`), and the plain HTTP listener
that serves them on ``BAY_METRICS_LISTEN`` (:mod:`libs.metrics.server`).

A service adds its own collectors to ``PROCESS.registry``; :func:`libs.runtime.run_service` starts
the listener before the service's ``serve``, so that a replay in progress is already visible.
"""

from libs.metrics.process import PROCESS, FoldCollector, ProcessMetrics
from libs.metrics.server import MetricsServer, start_metrics

__all__ = ["PROCESS", "FoldCollector", "MetricsServer", "ProcessMetrics", "start_metrics"]
