"""Task usage as the schedulers publish it: a window of samples per group, per task.

``bay.usage.<cluster>.<group>`` carries ``bay.v1.UsageBatch`` (services/scheduler/adapters/usage.py,
every couple of seconds). A sample becomes two fractions:

- cpu: ``cpu_fraction / cpus_limit`` (1.0 = the task uses all the cores it asked for); a task with
  no cpu limit gives its cores used (as the deployer's analyses have it). A sample without
  ``cpu_fraction`` (a task's first, which has no rate yet) has no cpu figure: missing, not 0.
- mem: ``mem_bytes / mem_limit_bytes``; a task with no memory limit has no memory fraction.

Samples are timed by when they arrive, on the window's clock (injectable; monotonic by default),
not by the scheduler's timestamp: the schedulers' clocks are not the autoscaler's, and the window
asks "what came in over the last N seconds". A sample that is not finite or is negative is
dropped. Samples older than ``keep_seconds`` are forgotten as new ones come (and when read).

The autoscaler and the deployer's analyses (services/deployer/adapters/samples.py) both read these
subjects through it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bay.v1 import scheduler_pb2

from libs.events import subjects

log = logging.getLogger("bay.samples.usage")

Kind = Literal["cpu", "mem"]
KINDS: tuple[Kind, ...] = ("cpu", "mem")
DEFAULT_KEEP_SECONDS = 600.0
MAX_PER_GROUP = 200_000  # samples kept of one group at most, whatever it publishes
PERIOD_GAPS = 5  # batch gaps kept per publisher, for ``period``


@dataclass(frozen=True)
class UsagePoint:
    at: float  # arrival, on the window's clock
    task_id: str
    cpu: float | None  # fraction of the task's cpu limit (cores used without one)
    mem: float | None  # fraction of the task's memory limit (None without one)
    cpu_since: float = 0.0  # unix seconds: where the cpu figure's interval began (0: not said)

    def get(self, kind: Kind) -> float | None:
        return self.cpu if kind == "cpu" else self.mem


def _fraction(value: float) -> float | None:
    return value if math.isfinite(value) and value >= 0 else None


def points(batch: scheduler_pb2.UsageBatch, at: float) -> list[UsagePoint]:
    """A batch's samples as fractions (see the module's docstring), each arrived at ``at``."""
    out = []
    for s in batch.samples:
        if not s.task_id:
            continue
        if not s.HasField("cpu_fraction"):
            cpu = None  # a task's first sample: no rate yet, unknown (not 0)
        elif s.cpus_limit > 0 and math.isfinite(s.cpus_limit):
            cpu = _fraction(s.cpu_fraction / s.cpus_limit)
        else:
            cpu = _fraction(s.cpu_fraction)
        mem = _fraction(s.mem_bytes / s.mem_limit_bytes) if s.mem_limit_bytes > 0 else None
        if cpu is not None or mem is not None:
            out.append(UsagePoint(at, s.task_id, cpu, mem, s.cpu_since))
    return out


def decode_batch(data: bytes, subject: str = "") -> scheduler_pb2.UsageBatch | None:
    """A message's payload as a UsageBatch; None when it is not one, or when its group is not the
    one its ``subject`` (``bay.usage.<cluster>.<group>``) names."""
    try:
        batch = scheduler_pb2.UsageBatch.FromString(data)
    except Exception:  # protobuf's DecodeError, or worse from a hostile payload
        return None
    if subject and subject.split(".")[3:] != [batch.group]:
        return None
    return batch


class UsageWindow:
    """Per group, the usage samples that arrived in the last ``keep_seconds``."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        max_per_group: int = MAX_PER_GROUP,
    ) -> None:
        self.clock = clock
        self.keep = keep_seconds
        self._groups: dict[str, deque[UsagePoint]] = {}
        self._max = max_per_group
        self.received = 0  # batches taken in (bad ones not counted)
        # per (group, cluster): when its last batch arrived, and the gaps between its last few
        self._arrivals: dict[tuple[str, str], tuple[float, deque[float]]] = {}

    def add(self, batch: scheduler_pb2.UsageBatch) -> None:
        if not batch.group:
            return
        now = self.clock()
        q = self._groups.setdefault(batch.group, deque(maxlen=self._max))
        q.extend(points(batch, now))
        self._trim(q, now)
        self.received += 1
        key = (batch.group, batch.cluster)
        last, gaps = self._arrivals.get(key, (now, deque(maxlen=PERIOD_GAPS)))
        if now > last:
            gaps.append(now - last)
        self._arrivals[key] = (now, gaps)

    def period(self, group: str) -> float | None:
        """How often the group's samples come: the median gap between the last few batches of its
        slowest publisher (a group moving between clusters has two). None before two batches."""
        medians = [
            sorted(gaps)[len(gaps) // 2]
            for (g, _), (_, gaps) in self._arrivals.items()
            if g == group and gaps
        ]
        return max(medians, default=None)

    def add_bytes(self, data: bytes, subject: str = "") -> bool:
        """A message's payload; False (and nothing kept) when it is not a UsageBatch, or when its
        group is not the one its ``subject`` (``bay.usage.<cluster>.<group>``) names."""
        batch = decode_batch(data, subject)
        if batch is None:
            return False
        self.add(batch)
        return True

    def _trim(self, q: deque[UsagePoint], now: float) -> None:
        while q and q[0].at < now - self.keep:
            q.popleft()

    def values(
        self,
        group: str,
        since: float,
        kind: Kind = "cpu",
        task_ids: Collection[str] | None = None,
        measured_from: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Each task's mean ``kind`` fraction over the samples that arrived at or after ``since`` (on
        the window's clock); only ``task_ids`` when given (e.g. the group's ready tasks). A task with
        no such sample is absent: missing, not 0. ``measured_from`` (task id -> unix seconds, e.g.
        since when each task is ready): a cpu figure whose interval began earlier is left out (what
        a task burnt starting up is not its load, as HPA's CPU initialisation rule has it); a sample
        that does not say where its interval began (``cpu_since`` 0) is kept."""
        sums = self._sums(group, since, kind, task_ids, measured_from)
        return {task: total / n for task, (total, n) in sorted(sums.items())}

    def sample_mean(
        self, group: str, since: float, kind: Kind = "cpu", task_ids: Collection[str] | None = None
    ) -> float | None:
        """The mean over every sample in the window, whichever task it is of (so a task sampled more
        often weighs more): what the deployer's analyses compute (``Samples.value``). None: no sample."""
        sums = self._sums(group, since, kind, task_ids).values()
        n = sum(count for _, count in sums)
        return sum(total for total, _ in sums) / n if n else None

    def _sums(
        self,
        group: str,
        since: float,
        kind: Kind,
        task_ids: Collection[str] | None,
        measured_from: Mapping[str, float] | None = None,
    ) -> dict[str, tuple[float, int]]:
        """Per task: the sum and count of its ``kind`` fractions that arrived at or after ``since``."""
        if kind not in KINDS:
            raise ValueError(f"usage kind: cpu or mem, not {kind!r}")
        q = self._groups.get(group)
        if not q:
            return {}
        self._trim(q, self.clock())
        sums: dict[str, tuple[float, int]] = {}
        for p in reversed(q):  # newest first: stop at the first one before the window
            if p.at < since:
                break
            value = p.get(kind)
            if value is None or (task_ids is not None and p.task_id not in task_ids):
                continue
            if kind == "cpu" and measured_from and 0 < p.cpu_since < measured_from.get(p.task_id, 0.0):
                continue
            total, n = sums.get(p.task_id, (0.0, 0))
            sums[p.task_id] = (total + value, n + 1)
        return sums

    def cpu(self, group: str, since: float, task_ids: Collection[str] | None = None) -> dict[str, float]:
        return self.values(group, since, "cpu", task_ids)

    def mem(self, group: str, since: float, task_ids: Collection[str] | None = None) -> dict[str, float]:
        return self.values(group, since, "mem", task_ids)

    def last_arrival(self, group: str) -> float | None:
        """When the group's newest sample arrived (its scheduler may have stopped publishing)."""
        q = self._groups.get(group)
        return q[-1].at if q else None

    def forget(self, group: str) -> None:
        """A deleted group's samples."""
        self._groups.pop(group, None)
        for key in [k for k in self._arrivals if k[0] == group]:
            del self._arrivals[key]

    async def subscribe(self, nc: Any, pattern: str = f"{subjects.USAGE_ROOT}.>") -> Any:
        """A subscription on ``nc`` (a nats-py client) feeding this window; a payload that is not a
        UsageBatch of its subject's group is dropped (logged at debug), never the subscription.
        Flushed, so samples published after this returns are seen."""

        async def on_usage(msg: Any) -> None:
            if not self.add_bytes(msg.data, msg.subject):
                log.debug(
                    "not a UsageBatch of its subject's group on %s (%d bytes)", msg.subject, len(msg.data)
                )

        sub = await nc.subscribe(pattern, cb=on_usage)
        await nc.flush()
        return sub
