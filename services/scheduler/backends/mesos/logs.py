"""Task logs: a task's sandbox stdout and stderr, read through its agent's ``/files/read``.

Command and Docker tasks run under the command executor, whose id is the task id, so a task's sandbox
is ``/frameworks/<framework>/executors/<task>/runs/latest`` on its agent (``agents.py``). The agent of
a task comes from the backend's table (``tasks.py``), which keeps it a while after the task ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from libs.errors import NotFound, Unavailable

from .agents import Agents
from .tasks import TaskTable

LAST_ERROR_SECONDS = 1.0


class TaskLogs:
    """``framework_id`` gives the framework's id as of now (it changes if the framework is replaced)."""

    def __init__(self, agents: Agents, tasks: TaskTable, framework_id: Callable[[], str | None]) -> None:
        self._agents = agents
        self._tasks = tasks
        self._framework_id = framework_id

    def sandbox_path(self, task_id: str, stream: str) -> str:
        return f"/frameworks/{self._framework_id()}/executors/{task_id}/runs/latest/{stream}"

    async def read(self, task_id: str, stream: str, tail: int, follow: bool) -> AsyncIterator[bytes]:
        """The tail, then (following) new output every half second until the task has ended."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"unknown log stream {stream!r} (stdout or stderr)")
        agent_id = self._tasks.agent_of(task_id)
        if agent_id is None:
            raise NotFound(f"task {task_id} is unknown to the Mesos backend")
        ref = await self._agents.lookup(agent_id)
        if ref is None or not ref.address:
            raise Unavailable(f"no address for agent {agent_id} of task {task_id}")

        def ended() -> bool:
            return self._tasks.ended(task_id)

        async for chunk in self._agents.read_log(
            ref, self.sandbox_path(task_id, stream), tail, follow, ended
        ):
            yield chunk

    async def last_error_line(self, task_id: str, agent_id: str) -> str:
        """The failed task's last stderr line, as the local backend puts it in the message; "" if the
        agent does not answer quickly (the status is not held up for long)."""
        ref = await self._agents.lookup(agent_id)
        if ref is None or not ref.address or not self._framework_id():
            return ""
        try:
            async with asyncio.timeout(LAST_ERROR_SECONDS):
                return await self._agents.last_line(ref, self.sandbox_path(task_id, "stderr"))
        except (TimeoutError, NotFound, Unavailable, ValueError):
            return ""
