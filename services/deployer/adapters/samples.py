"""Usage and custom metric samples from plain NATS (not events): the analysis' metric source.

``bay.usage.<cluster>.<group>`` carries ``bay.v1.UsageBatch`` (cpu and memory per task, used over
the task's limits: 0..1); ``bay.metric.<group>.<name>`` a number as text or JSON ``{"value": x}``.
Samples are kept for ``keep_seconds`` and timed by when they arrived (the deployer's clock).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from bay.v1 import scheduler_pb2

from libs.events import subjects

log = logging.getLogger("bay.deployer.samples")


def parse_metric(data: bytes) -> float | None:
    text = data.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class Samples:
    def __init__(self, clock: Callable[[], float] = time.time, keep_seconds: float = 3600.0) -> None:
        self.clock = clock
        self.keep = keep_seconds
        self.usage: dict[str, deque[tuple[float, str, float, float]]] = defaultdict(deque)  # group
        self.custom: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(deque)

    def add_usage(self, batch: scheduler_pb2.UsageBatch) -> None:
        now = self.clock()
        q = self.usage[batch.group]
        for s in batch.samples:
            cpu = s.cpu_fraction / s.cpus_limit if s.cpus_limit > 0 else s.cpu_fraction
            mem = s.mem_bytes / s.mem_limit_bytes if s.mem_limit_bytes > 0 else 0.0
            q.append((now, s.task_id, cpu, mem))
        self._trim(q, now)

    def add_metric(self, group: str, name: str, value: float) -> None:
        now = self.clock()
        q = self.custom[(group, name)]
        q.append((now, value))
        self._trim(q, now)

    def _trim(self, q: deque[Any], now: float) -> None:
        while q and q[0][0] < now - self.keep:
            q.popleft()

    def value(self, group: str, metric: str, task_ids: frozenset[str], since: float) -> float | None:
        if metric.startswith("custom:"):
            values = [v for at, v in self.custom.get((group, metric[7:]), ()) if at >= since]
        elif metric in ("cpu", "mem"):
            mem = metric == "mem"
            values = [
                s[3] if mem else s[2] for s in self.usage.get(group, ()) if s[0] >= since and s[1] in task_ids
            ]
        else:
            return None
        return sum(values) / len(values) if values else None

    async def subscribe(self, nc: Any) -> list[Any]:
        """Subscriptions on ``nc`` (a nats.py client) for every group's samples."""

        async def on_usage(msg: Any) -> None:
            try:
                self.add_usage(scheduler_pb2.UsageBatch.FromString(msg.data))
            except Exception as exc:  # a bad sample is dropped, never the subscription
                log.debug("bad usage sample on %s: %s", msg.subject, exc)

        async def on_metric(msg: Any) -> None:
            parts = msg.subject.split(".")
            value = parse_metric(msg.data)
            if len(parts) >= 4 and value is not None:
                self.add_metric(parts[2], ".".join(parts[3:]), value)

        return [
            await nc.subscribe(f"{subjects.USAGE_ROOT}.>", cb=on_usage),
            await nc.subscribe(f"{subjects.METRIC_ROOT}.>", cb=on_metric),
        ]
