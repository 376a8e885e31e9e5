"""Background coroutines of the Mesos backend's parts, kept so that stopping the backend ends them."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Jobs:
    """Coroutines started on the loop by the parts (a decline, a reconciliation, a restart), each held
    until it is done: the loop keeps only weak references to tasks, and :meth:`cancel` needs them all."""

    def __init__(self) -> None:
        self._jobs: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def cancel(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
