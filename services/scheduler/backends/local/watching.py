"""Noticing that a local task's process ended: a pidfd per task (readable the moment the process
ends) where the kernel offers one, else one poller that checks every running pid (same pid *and*
start time, so a reused pid is not mistaken for the task). Either way the backend's exit handler
runs, once per task (``RunningTask.collecting``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from . import procfs
from .running import RunningTask

ExitHandler = Callable[[RunningTask], Coroutine[Any, Any, None]]


class ExitWatcher:
    def __init__(
        self,
        on_exit: ExitHandler,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        tasks: Callable[[], Iterable[RunningTask]],
        poll_interval: float,
    ) -> None:
        self._on_exit, self._spawn, self._tasks = on_exit, spawn, tasks
        self._interval = poll_interval
        self._pidfd_ok = hasattr(os, "pidfd_open")
        self.poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.poller = asyncio.create_task(self._poll(), name="local-backend-poller")

    def stop(self) -> None:
        """No more watching (the processes keep running); the poller is cancelled, not awaited."""
        loop = asyncio.get_running_loop()
        if self.poller is not None:
            self.poller.cancel()
        for task in self._tasks():
            if task.pidfd is not None:
                loop.remove_reader(task.pidfd)
                os.close(task.pidfd)
                task.pidfd = None

    def watch(self, task: RunningTask) -> None:
        if not self._pidfd_ok:
            return  # the poller looks after it
        try:
            fd = os.pidfd_open(task.pid)
        except ProcessLookupError:
            self._spawn(self._on_exit(task))
            return
        except OSError:
            self._pidfd_ok = False  # e.g. ENOSYS in an old kernel or a sandbox: poll instead
            return
        task.pidfd = fd
        asyncio.get_running_loop().add_reader(fd, self._pidfd_ready, task)

    def _pidfd_ready(self, task: RunningTask) -> None:
        if task.pidfd is not None:
            asyncio.get_running_loop().remove_reader(task.pidfd)
            os.close(task.pidfd)
            task.pidfd = None
        self._spawn(self._on_exit(task))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for task in list(self._tasks()):
                if task.state.terminal or task.pidfd is not None or task.collecting or not task.pid:
                    continue
                if not procfs.is_running(task.pid, task.start_ticks):
                    self._spawn(self._on_exit(task))
