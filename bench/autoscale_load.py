"""The load of the autoscaling benchmarks.

- ``BurnLoad``: real CPU on real tasks (tests/tasks/burn.py). An open loop: ``cores`` of CPU a
  second, sent as ``GET /?ms=N`` requests at an even pace whatever the answers take (a closed loop
  would send less as the tasks slow down, and the load would follow the scaling); each request goes
  to a task found through Bay DNS as tests.dnsload finds one (SRV kept for its TTL, weighted pick).
- ``SyntheticUsage``: for tasks that burn nothing (the simulated Mesos cluster), the usage samples a
  scheduler would publish for them under a load of ``cores`` spread evenly over the ready tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import dns.exception
from bay.v1 import scheduler_pb2

from libs.events import subjects
from libs.views import PlatformView
from tests.dnsload import DnsLoad

PACE_SECONDS = 0.01  # how often the open loop sends what is due


@dataclass
class BurnLoad:
    finder: DnsLoad  # resolution and pick only (its own request loop is not used)
    ms: float = 10.0  # CPU milliseconds each request burns in the task
    timeout: float = 5.0
    max_inflight: int = 400  # beyond this, due requests are dropped (counted), not queued
    cores: float = 0.0
    sent: int = 0
    answered: int = 0
    failed: int = 0
    dropped: int = 0
    first_error: str = ""
    changes: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, cores) as set

    def set(self, cores: float) -> float:
        """Change the offered load; the monotonic time it changed."""
        self.cores = cores
        now = time.monotonic()
        self.changes.append((now, cores))
        return now

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        inflight: set[asyncio.Task[None]] = set()
        credit, last = 0.0, loop.time()
        while not stop.is_set():
            await asyncio.sleep(PACE_SECONDS)  # the generator's pace, not a wait for anything
            now = loop.time()
            credit += (now - last) * self.cores * 1000.0 / self.ms
            last = now
            while credit >= 1.0:
                credit -= 1.0
                if len(inflight) >= self.max_inflight:
                    self.dropped += 1
                    continue
                task = asyncio.create_task(self._one())
                inflight.add(task)
                task.add_done_callback(inflight.discard)
        await asyncio.gather(*inflight, return_exceptions=True)

    def _fail(self, why: str) -> None:
        self.failed += 1
        self.first_error = self.first_error or why

    async def _one(self) -> None:
        self.sent += 1
        try:
            target = await self.finder.target()
        except (OSError, dns.exception.DNSException) as exc:
            self._fail(f"dns: {exc!r}")
            return
        if target is None:
            self._fail("dns: no task in the answer")
            return
        host, port = target
        request = f"GET /?ms={self.ms:g} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request.encode())
                reply = await reader.read()
        except (OSError, TimeoutError) as exc:
            self._fail(f"{host}:{port}: {exc!r}")
            return
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        if reply.startswith(b"HTTP/1.1 200 "):
            self.answered += 1
        else:
            self._fail(f"{host}:{port}: {reply[:40]!r}")


@dataclass
class SyntheticUsage:
    """Every ``interval`` s one ``UsageBatch`` on ``bay.usage.<cluster>.<group>``: a sample per ready
    task (the shared readiness rule), each an even share of ``cores`` (``cpu_fraction`` in cores,
    ``cpus_limit`` the task's request: what a scheduler reports for a task using that much).

    ``watch()`` counts the batches on the same subject that this publisher did not send (a
    scheduler's own samples, which would be averaged with these) and the largest cpu utilisation
    among them: the benchmark runs its scheduler with usage publishing off and says what it saw.
    """

    client: Any  # nats-py client
    view: PlatformView
    cluster: str
    group: str
    cpus: float  # the task's cpu request
    cores: float = 0.0
    interval: float = 1.0
    published: int = 0
    foreign: int = 0
    foreign_max: float = 0.0
    changes: list[tuple[float, float]] = field(default_factory=list)
    _mine: deque[bytes] = field(default_factory=lambda: deque(maxlen=64))

    @property
    def subject(self) -> str:
        return subjects.usage(self.cluster, self.group)

    def set(self, cores: float) -> float:
        self.cores = cores
        now = time.monotonic()
        self.changes.append((now, cores))
        return now

    async def watch(self) -> Any:
        async def seen(msg: Any) -> None:
            if msg.data in self._mine:
                return
            self.foreign += 1
            batch = scheduler_pb2.UsageBatch.FromString(msg.data)
            for s in batch.samples:
                if s.cpus_limit > 0 and math.isfinite(s.cpu_fraction / s.cpus_limit):
                    self.foreign_max = max(self.foreign_max, s.cpu_fraction / s.cpus_limit)

        sub = await self.client.subscribe(self.subject, cb=seen)
        await self.client.flush()
        return sub

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stop.is_set():
            ready = self.view.ready_tasks(self.group)
            if ready:
                each = self.cores / len(ready)
                batch = scheduler_pb2.UsageBatch(cluster=self.cluster, group=self.group)
                now = time.time()
                for t in ready:
                    batch.samples.add(task_id=t.id, timestamp=now, cpu_fraction=each, cpus_limit=self.cpus)
                data = batch.SerializeToString()
                self._mine.append(data)
                await self.client.publish(self.subject, data)
                self.published += 1
            due = max(due + self.interval, loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(due - loop.time()):  # the publisher's period
                    await stop.wait()
