"""Per-task lanes for status updates: in order per task, many tasks at once.

:class:`Lanes` keeps one update per task in ``deliver`` at a time, in arrival order, with many tasks
in flight at once (the event log appends concurrently), and drops an update the master re-sent while
the first copy is still on its way. What delivering means (the sink, then the acknowledgement) is
``delivery.py``'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]


class Lanes:
    """Per task, updates go to ``deliver`` one at a time in arrival order; at most ``limit`` tasks at
    once. ``deliver`` must not raise (it logs what goes wrong)."""

    def __init__(self, deliver: Callable[[Json], Awaitable[None]], limit: int) -> None:
        self._deliver = deliver
        self._slots = asyncio.Semaphore(max(1, limit))
        self._lanes: dict[str, deque[Json]] = {}
        self._jobs: set[asyncio.Task[None]] = set()

    def push(self, status: Json) -> None:
        task_id = status["task_id"]["value"]
        lane = self._lanes.get(task_id)
        if lane is not None:
            uuid = status.get("uuid")
            if uuid and any(queued.get("uuid") == uuid for queued in lane):
                return  # the agent re-sent an update we have not acknowledged yet: it is on its way
            lane.append(status)
            return
        self._lanes[task_id] = deque((status,))
        job = asyncio.create_task(self._drain(task_id))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _drain(self, task_id: str) -> None:
        lane = self._lanes[task_id]
        try:
            async with self._slots:
                while lane:
                    await self._deliver(lane[0])
                    lane.popleft()
        finally:
            self._lanes.pop(task_id, None)

    @property
    def busy(self) -> int:
        """Tasks with updates not yet through the sink."""
        return len(self._lanes)

    async def close(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        self._lanes.clear()
