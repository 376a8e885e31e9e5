"""Custom metrics pushed on plain NATS: ``bay.metric.<group>.<name>`` (the name may hold dots).

The payload (the autoscaler's and the deployer's analyses' alike): a number as text (``12.5``),
or JSON ``{"value": 12.5}``, with an optional ``"task": "<task id>"`` saying whose figure it is.
Anything else is dropped: not a finite number (``NaN``, ``Infinity``, ``true``, a string), a
``task`` that is not a non-empty string, more than ``MAX_PAYLOAD`` bytes.

Only the latest value is kept: per group and name, one for the group as a whole (no ``task``) and
one per task. Values are timed by arrival on the store's clock (injectable; monotonic by default);
one older than ``stale_after`` seconds counts as missing, since a publisher that stopped says
nothing about now.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libs.events import subjects

log = logging.getLogger("bay.samples.pushed")

MAX_PAYLOAD = 4096
DEFAULT_STALE_AFTER = 60.0
MAX_SERIES = 10_000  # (group, name) pairs
MAX_TASKS = 5_000  # tasks of one (group, name)


@dataclass(frozen=True)
class Pushed:
    value: float
    task: str | None = None  # None: the group's figure


@dataclass(frozen=True)
class Reading:
    value: float
    at: float  # arrival, on the store's clock


def parse_payload(data: bytes) -> Pushed | None:
    """A pushed metric's payload, or None when it is not one (see the module's docstring)."""
    if len(data) > MAX_PAYLOAD:
        return None
    try:
        parsed = json.loads(data.decode("utf-8").strip())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    task = None
    if isinstance(parsed, dict):
        task = parsed.get("task")
        if task is not None and (not isinstance(task, str) or not task):
            return None
        parsed = parsed.get("value")
    if isinstance(parsed, bool) or not isinstance(parsed, int | float):
        return None
    try:
        value = float(parsed)
    except OverflowError:  # an integer too large for a float
        return None
    if not math.isfinite(value):
        return None
    return Pushed(value, task)


def parse_subject(subject: str) -> tuple[str, str] | None:
    """``bay.metric.<group>.<name>`` -> (group, name), or None."""
    prefix = f"{subjects.METRIC_ROOT}."
    if not subject.startswith(prefix):
        return None
    group, _, name = subject.removeprefix(prefix).partition(".")
    return (group, name) if group and name else None


class PushedMetrics:
    """The latest pushed value of every group's metrics, with staleness."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        stale_after: float = DEFAULT_STALE_AFTER,
        max_series: int = MAX_SERIES,
        max_tasks: int = MAX_TASKS,
    ) -> None:
        self.clock = clock
        self.stale_after = stale_after
        self._max_series = max_series
        self._max_tasks = max_tasks
        self._group: dict[tuple[str, str], Reading] = {}
        self._tasks: dict[tuple[str, str], dict[str, Reading]] = {}
        self.dropped = 0  # payloads or subjects that were not a metric

    def add(self, group: str, name: str, pushed: Pushed) -> bool:
        """Keep ``pushed`` as the latest; False when it would be a series over the limits (a
        publisher inventing names or task ids is not let grow the store without end)."""
        reading = Reading(pushed.value, self.clock())
        key = (group, name)
        if key not in self._group and key not in self._tasks and self._series() >= self._max_series:
            return False
        if pushed.task is None:
            self._group[key] = reading
            return True
        per_task = self._tasks.setdefault(key, {})
        if pushed.task not in per_task and len(per_task) >= self._max_tasks:
            return False
        per_task[pushed.task] = reading
        return True

    def _series(self) -> int:
        return len(self._group) + len(self._tasks)  # an upper bound: a pair may be in both

    def add_message(self, subject: str, data: bytes) -> bool:
        """One NATS message; False (and counted in ``dropped``) when it is no metric."""
        where = parse_subject(subject)
        pushed = parse_payload(data) if where is not None else None
        if where is None or pushed is None or not self.add(*where, pushed):
            self.dropped += 1
            return False
        return True

    def _fresh(self, reading: Reading | None, now: float) -> bool:
        return reading is not None and now - reading.at <= self.stale_after

    def group_value(self, group: str, name: str) -> float | None:
        """The group's own latest value (pushed without ``task``), or None: none, or stale."""
        reading = self._group.get((group, name))
        return reading.value if reading is not None and self._fresh(reading, self.clock()) else None

    def task_values(self, group: str, name: str) -> dict[str, float]:
        """Each task's latest value that is not stale; stale ones are forgotten here."""
        per_task = self._tasks.get((group, name))
        if not per_task:
            return {}
        now = self.clock()
        for task in [t for t, r in per_task.items() if not self._fresh(r, now)]:
            del per_task[task]
        return {t: r.value for t, r in sorted(per_task.items())}

    def reading(self, group: str, name: str, task: str | None = None) -> Reading | None:
        """The latest reading as it is, stale or not (for a status page: "last seen 3 min ago")."""
        if task is None:
            return self._group.get((group, name))
        return self._tasks.get((group, name), {}).get(task)

    def forget(self, group: str) -> None:
        for store in (self._group, self._tasks):
            for key in [k for k in store if k[0] == group]:
                del store[key]

    async def subscribe(self, nc: Any, pattern: str = f"{subjects.METRIC_ROOT}.>") -> Any:
        """A subscription on ``nc`` (a nats-py client) feeding this store, flushed before it returns;
        a message that is no metric is dropped (logged at debug), never the subscription."""

        async def on_metric(msg: Any) -> None:
            if not self.add_message(msg.subject, msg.data):
                log.debug("not a metric on %s (%d bytes)", msg.subject, len(msg.data))

        sub = await nc.subscribe(pattern, cb=on_metric)
        await nc.flush()
        return sub
