"""The last hour (``BAY_USAGE_KEEP_SECONDS``) of each group's CPU and memory, for the group page's
charts.

Usage samples are not events (they are on plain NATS, ``bay.usage.<cluster>.<group>``, and nothing
stores them), so the only past the gateway can draw is what it received: a bounded ring per group of
one point per batch, each the mean over the batch's tasks of :func:`libs.samples.usage.points`'
fractions (the autoscaler's and the deployer's reading of the same samples). Points are timed by
arrival on the wall clock, which is what a chart's time axis shows.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from bay.v1 import scheduler_pb2

from libs.events import subjects
from libs.samples.usage import decode_batch, points

log = logging.getLogger("bay.gateway.usage")

#: points kept per group whatever the rate (a batch every 2 s per cluster: one hour is 1,800)
MAX_POINTS = 4000


class UsagePoint(NamedTuple):
    at: float  # unix seconds, on arrival
    cpu: float | None
    mem: float | None
    tasks: int


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class UsageHistory:
    def __init__(self, keep_seconds: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.keep = keep_seconds
        self.clock = clock
        self._groups: dict[str, deque[UsagePoint]] = {}
        self._sub: Any = None

    def add(self, batch: scheduler_pb2.UsageBatch) -> None:
        if not batch.group:
            return
        now = self.clock()
        samples = points(batch, now)
        if not samples:
            return
        cpu = [p.cpu for p in samples if p.cpu is not None]
        mem = [p.mem for p in samples if p.mem is not None]
        ring = self._groups.setdefault(batch.group, deque(maxlen=MAX_POINTS))
        ring.append(UsagePoint(now, _mean(cpu), _mean(mem), len(samples)))
        self._trim(ring, now)

    def add_bytes(self, data: bytes, subject: str) -> bool:
        """A message's payload; False when it is not a UsageBatch of its subject's group."""
        batch = decode_batch(data, subject)
        if batch is None:
            return False
        self.add(batch)
        return True

    def _trim(self, ring: deque[UsagePoint], now: float) -> None:
        while ring and ring[0].at < now - self.keep:
            ring.popleft()

    def of_group(self, group: str, since: float) -> list[UsagePoint]:
        ring = self._groups.get(group)
        if not ring:
            return []
        self._trim(ring, self.clock())
        return [p for p in ring if p.at >= since]

    async def subscribe(self, nc: Any) -> None:
        """Follow ``bay.usage.>`` on ``nc`` (a nats-py client); a bad payload is dropped, never the
        subscription."""

        async def on_usage(msg: Any) -> None:
            if not self.add_bytes(msg.data, msg.subject):
                log.debug("not a UsageBatch of its subject's group on %s", msg.subject)

        self._sub = await nc.subscribe(f"{subjects.USAGE_ROOT}.>", cb=on_usage)

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # the connection is closing anyway
                pass
            self._sub = None
