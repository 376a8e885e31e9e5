"""The scheduler's Prometheus series (label ``cluster`` on every one).

Per group, read from the state at scrape time (:meth:`SchedulerMetrics.collect`, one pass over the
cluster's tasks: cheap for 10,000): ``bay_group_desired_instances`` (the instances of its version
targets on this cluster), ``bay_group_ready_tasks`` (the readiness rule of :mod:`libs.views`) and
``bay_group_tasks{state}`` (its tasks that have not ended, by state as the views name them, lower
case; every such state is given, 0 included, so a series does not come and go).

Counted live, as they happen, never from a replay (a restarted scheduler starts them at 0, which
Prometheus reads as a reset): ``bay_task_restarts_total`` (a task of a group that still runs here
ended without Bay having asked, or was killed for failing its health check or by an operator: it is
replaced), ``bay_task_failures_total`` (ended failed, in error or lost without Bay having asked, or
killed for failing its health check), ``bay_task_launch_to_ready_seconds`` (a task's first ready,
from its launch), ``bay_scheduler_round_seconds`` and ``bay_placement_failures_total`` (a round that
could not place all of a group's missing tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from libs.events.model import TaskState
from libs.views import Task
from services.scheduler.domain.reconcile import Decision
from services.scheduler.domain.state import SchedulerState

#: killed by Bay for a reason that does not replace the task (scale-down, new version, orphan, drain)
_REPLACED_KILLS = frozenset({"", "unhealthy", "operator"})
_NOT_FAILED = frozenset({TaskState.FINISHED, TaskState.KILLED, TaskState.GONE_BY_OPERATOR})
_LIVE_STATES = tuple(s for s in TaskState if not s.terminal)
READY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
ROUND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class SchedulerMetrics(Collector):
    def __init__(
        self, cluster: str, state: Callable[[], SchedulerState], registry: CollectorRegistry
    ) -> None:
        self.cluster = cluster
        self.state = state
        labels = ["cluster", "group"]
        self.restarts = Counter(
            "bay_task_restarts", "tasks that ended and are replaced", labels, registry=registry
        )
        self.failures = Counter(
            "bay_task_failures", "tasks that failed, were lost or failed their health check", labels,
            registry=registry,
        )  # fmt: skip
        self.placement_failures = Counter(
            "bay_placement_failures",
            "rounds that could not place every missing task of a group",
            labels,
            registry=registry,
        )
        self.launch_to_ready = Histogram(
            "bay_task_launch_to_ready_seconds",
            "seconds from a task's launch to its first ready",
            ["cluster"],
            buckets=READY_BUCKETS,
            registry=registry,
        ).labels(cluster)
        self.round_seconds = Histogram(
            "bay_scheduler_round_seconds",
            "seconds a scheduling round took (decide, store, launch and kill)",
            ["cluster"],
            buckets=ROUND_BUCKETS,
            registry=registry,
        ).labels(cluster)
        self._ready_once: set[str] = set()
        registry.register(self)

    # ---- what happens, live ----

    def task_changed(self, before: Task | None, after: Task) -> None:
        """A task event folded (hooked to the state once its replay is over)."""
        if before is None:
            return
        view = self.state()
        if after.terminal:
            if before.terminal:
                return
            self._ready_once.discard(after.id)
            reason = after.kill_reason
            if reason == "unhealthy" or (not reason and after.state not in _NOT_FAILED):
                self.failures.labels(self.cluster, after.group).inc()
            if reason in _REPLACED_KILLS and view.group(after.group) is not None:
                self.restarts.labels(self.cluster, after.group).inc()
            return
        if after.id in self._ready_once:
            return
        since = view.ready_since(after)
        if since is not None:
            self._ready_once.add(after.id)
            self.launch_to_ready.observe(max(0.0, since - after.launched_at))

    def round_done(self, decision: Decision, seconds: float) -> None:
        self.round_seconds.observe(seconds)
        for failed in decision.failures:
            self.placement_failures.labels(self.cluster, failed.group).inc()

    # ---- what is, at scrape time ----

    def collect(self) -> Iterable[Metric]:
        state = self.state()
        cluster = self.cluster
        desired = GaugeMetricFamily(
            "bay_group_desired_instances",
            "instances the group's version targets want on this cluster",
            labels=["cluster", "group"],
        )
        ready = GaugeMetricFamily(
            "bay_group_ready_tasks", "the group's ready tasks here", labels=["cluster", "group"]
        )
        tasks = GaugeMetricFamily(
            "bay_group_tasks",
            "the group's tasks here that have not ended, by state",
            labels=["cluster", "group", "state"],
        )
        is_ready = state.is_ready
        for g in state.mine():
            name = g.name
            desired.add_metric(
                [cluster, name], sum(t.instances for t in g.targets if t.spec.cluster == cluster)
            )
            by_state = dict.fromkeys(_LIVE_STATES, 0)
            n_ready = 0
            for task in state.group_tasks(name):
                st = task.state
                if st in by_state:
                    by_state[st] += 1
                    if st == TaskState.RUNNING and is_ready(task):
                        n_ready += 1
            ready.add_metric([cluster, name], n_ready)
            for st, n in by_state.items():
                tasks.add_metric([cluster, name, st.value.lower()], n)
        yield from (desired, ready, tasks)

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time
