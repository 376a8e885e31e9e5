"""Task usage for the autoscaler: one ``UsageBatch`` per group on ``bay.usage.<cluster>.<group>``.

Usage samples are metrics, not events: they go on plain NATS subjects (no JetStream), and a sample
that cannot be sent is dropped, since a stale CPU figure is worth less than the next one. Backends
report cumulative CPU seconds; the sampler turns them into a fraction of a core over the time since
the previous sample of the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from bay.v1.scheduler_pb2 import UsageBatch, UsageSample
from nats.aio.client import Client

from libs.events import subjects
from services.scheduler.ports import TaskUsage

log = logging.getLogger("bay.scheduler.usage")

FLUSH_TIMEOUT = 2.0  # seconds at most; NATS that does not answer within this is reported as down


def usage_subject(cluster: str, group: str) -> str:
    return subjects.usage(cluster, group)


@dataclass(frozen=True)
class _Last:
    timestamp: float
    cpu_seconds: float
    cpu_fraction: float | None  # None: no rate yet
    since: float = 0.0  # where the interval of cpu_fraction began (0 without one)


class UsageSampler:
    """Turns cumulative TaskUsage samples into UsageBatch messages per group.

    ``cpu_fraction`` is the delta of ``cpu_seconds`` over the delta of time since the previous sample
    of the same task; a task's first sample leaves it unset (unknown: a reader must not average a 0
    for a task just started). A counter that went back (a re-adopted task in a new cgroup) starts
    over, unset; a sample no newer than the previous one repeats the last fraction. ``cpu_since`` is
    where the fraction's interval began (the previous sample's timestamp).
    """

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._last: dict[str, _Last] = {}

    def batches(
        self, samples: Iterable[TaskUsage], group_of: Callable[[str], str | None]
    ) -> list[UsageBatch]:
        """One batch per group, groups and tasks in name order. Tasks not in ``samples`` are forgotten;
        tasks whose group is unknown (``group_of`` gives None) are remembered but not sent."""
        last: dict[str, _Last] = {}
        by_group: dict[str, list[UsageSample]] = {}
        for usage in samples:
            last[usage.task_id] = current = self._advance(self._last.get(usage.task_id), usage)
            group = group_of(usage.task_id)
            if group is None:
                continue
            by_group.setdefault(group, []).append(
                UsageSample(
                    task_id=usage.task_id,
                    timestamp=usage.timestamp,
                    cpu_seconds=usage.cpu_seconds,
                    cpu_fraction=current.cpu_fraction,
                    cpu_since=current.since,
                    mem_bytes=max(0, usage.mem_bytes),
                    cpus_limit=usage.cpus_limit,
                    mem_limit_bytes=max(0, usage.mem_limit_bytes),
                )
            )
        self._last = last
        return [
            UsageBatch(
                cluster=self.cluster,
                group=group,
                samples=sorted(by_group[group], key=lambda s: s.task_id),
            )
            for group in sorted(by_group)
        ]

    @staticmethod
    def _advance(previous: _Last | None, usage: TaskUsage) -> _Last:
        if previous is None:
            return _Last(usage.timestamp, usage.cpu_seconds, None)
        elapsed = usage.timestamp - previous.timestamp
        if elapsed <= 0:
            return previous
        used = usage.cpu_seconds - previous.cpu_seconds
        if used < 0:
            return _Last(usage.timestamp, usage.cpu_seconds, None)
        return _Last(usage.timestamp, usage.cpu_seconds, used / elapsed, previous.timestamp)


async def publish_usage(
    conn: Client, batches: list[UsageBatch], flush_timeout: float = FLUSH_TIMEOUT
) -> None:
    """Plain NATS publish of each batch, then a flush so that a NATS that is gone shows up here."""
    for batch in batches:
        await conn.publish(usage_subject(batch.cluster, batch.group), batch.SerializeToString())
    async with asyncio.timeout(flush_timeout):
        await conn.flush()


#: how often usage is published when BAY_USAGE_INTERVAL_SECONDS is not set, by backend kind: every
#: second where it is read from the host, every two where each agent is asked over HTTP
DEFAULT_INTERVAL = {"local": 1.0, "mesos": 2.0}


class UsagePublisher:
    """Every ``interval`` seconds: read the backend's usage, publish one batch per group.

    A failing backend or an unreachable NATS is logged once when it starts failing and once when it
    recovers, not on every tick; the loop goes on either way. While NATS is reconnecting, batches are
    dropped rather than buffered by the client.
    """

    def __init__(
        self,
        conn: Client,
        backend_usage: Callable[[], Awaitable[list[TaskUsage]]],
        group_of: Callable[[str], str | None],
        cluster: str,
        interval: float = 2.0,
    ) -> None:
        self._conn = conn
        self._backend_usage = backend_usage
        self._group_of = group_of
        self._sampler = UsageSampler(cluster)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._failing: set[str] = set()  # "backend", "nats": what is in an outage now

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-publisher")

    async def stop(self) -> None:
        """Cancel the loop and wait for it. The event as well as the cancel: nats-py's flush, like any
        ``asyncio.wait_for`` on Python 3.11, can swallow a cancel that lands as its reply arrives."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def tick(self) -> None:
        """One round: sample, publish. Errors are logged (once per outage), never raised."""
        try:
            samples = await self._backend_usage()
        except Exception as exc:
            self._outage("backend", f"reading task usage failed: {exc!r}")
            return
        self._recovered("backend", "reading task usage works again")
        batches = self._sampler.batches(samples, self._group_of)
        if not batches:
            return
        try:
            if not self._conn.is_connected:
                raise ConnectionError("not connected")
            # A round waits on NATS for at most its interval (but at least half a second).
            await publish_usage(self._conn, batches, max(0.5, min(self._interval, FLUSH_TIMEOUT)))
        except Exception as exc:
            self._outage("nats", f"publishing usage to NATS failed: {exc!r}")
            return
        self._recovered("nats", "publishing usage to NATS works again")

    def _outage(self, what: str, message: str) -> None:
        if what not in self._failing:
            self._failing.add(what)
            log.warning("%s; will keep trying every %ss", message, self._interval)

    def _recovered(self, what: str, message: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            log.info(message)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # e.g. group_of raised: this round is lost, the next one may work
                log.exception("usage round failed")
            start = max(start + self._interval, loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(start - loop.time()):
                    await self._stopping.wait()
