"""Usage and custom metric samples from plain NATS (not events): the analysis' metric source.

Both stores' parsing is the shared one in libs/samples: usage from ``bay.usage.<cluster>.<group>``
through :class:`libs.samples.usage.UsageWindow` (cpu and memory per task, used over the task's
limits), custom metrics from ``bay.metric.<group>.<name>`` through
:func:`libs.samples.pushed.parse_subject` and :func:`~libs.samples.pushed.parse_payload`. An
analysis asks for the mean since it began, so every custom value is kept (for ``keep_seconds``),
not only the latest as the autoscaler's store does. Samples are timed by when they arrived on the
deployer's clock.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from bay.v1 import scheduler_pb2

from libs.events import subjects
from libs.samples.pushed import parse_payload, parse_subject
from libs.samples.usage import UsageWindow

log = logging.getLogger("bay.deployer.samples")


class Samples:
    def __init__(self, clock: Callable[[], float] = time.time, keep_seconds: float = 3600.0) -> None:
        self.clock = clock
        self.keep = keep_seconds
        self.usage = UsageWindow(clock, keep_seconds)
        self.custom: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(deque)

    def add_usage(self, batch: scheduler_pb2.UsageBatch) -> None:
        self.usage.add(batch)

    def add_metric(self, group: str, name: str, value: float) -> None:
        now = self.clock()
        q = self.custom[(group, name)]
        q.append((now, value))
        while q and q[0][0] < now - self.keep:
            q.popleft()

    def add_metric_message(self, subject: str, data: bytes) -> bool:
        """One ``bay.metric.<group>.<name>`` message; False when it is no metric (a task's own
        figure counts towards the group's mean like any other)."""
        where = parse_subject(subject)
        pushed = parse_payload(data) if where is not None else None
        if where is None or pushed is None:
            return False
        self.add_metric(*where, pushed.value)
        return True

    def value(self, group: str, metric: str, task_ids: frozenset[str], since: float) -> float | None:
        if metric.startswith("custom:"):
            values = [v for at, v in self.custom.get((group, metric[7:]), ()) if at >= since]
            return sum(values) / len(values) if values else None
        if metric == "cpu":
            return self.usage.sample_mean(group, since, "cpu", task_ids)
        if metric == "mem":
            return self.usage.sample_mean(group, since, "mem", task_ids)
        return None

    async def subscribe(self, nc: Any) -> list[Any]:
        """Subscriptions on ``nc`` (a nats.py client) for every group's samples."""

        async def on_metric(msg: Any) -> None:
            if not self.add_metric_message(msg.subject, msg.data):
                log.debug("not a metric on %s (%d bytes)", msg.subject, len(msg.data))

        usage = await self.usage.subscribe(nc)
        return [usage, await nc.subscribe(f"{subjects.METRIC_ROOT}.>", cb=on_metric)]
