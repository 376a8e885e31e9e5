"""Task usage on Mesos: each agent's ``/monitor/statistics``, for this framework's live tasks.

The statistics list one entry per executor, of every framework on the agent; a command or Docker
task has its own executor, named after the task. Only the agents that run tasks of ours are asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.scheduler.ports import TaskUsage

from . import http
from .agents import Agents
from .convert import task_usage
from .tasks import TaskTable

log = logging.getLogger("bay.scheduler.mesos")


class UsageReader:
    def __init__(
        self,
        agents: Agents,
        tasks: TaskTable,
        framework_id: Callable[[], str | None],
        clock: Callable[[], float],
    ) -> None:
        self._agents = agents
        self._tasks = tasks
        self._framework_id = framework_id
        self._clock = clock

    async def usage(self) -> list[TaskUsage]:
        by_agent = self._tasks.live_by_agent()
        results = await asyncio.gather(*(self._of_agent(a, ids) for a, ids in by_agent.items()))
        return [u for found in results for u in found]

    async def _of_agent(self, agent_id: str, task_ids: set[str]) -> list[TaskUsage]:
        ref = await self._agents.lookup(agent_id)
        if ref is None or not ref.address:
            return []
        try:
            entries = await self._agents.statistics(ref)
        except (http.HttpError, ValueError) as exc:
            log.debug("no statistics from agent %s: %s", ref.hostname, exc)
            return []
        now, framework_id = self._clock(), self._framework_id()
        return [
            task_usage(tid, entry, now)
            for entry in entries
            if entry.get("framework_id") == framework_id
            and (tid := entry.get("executor_id") or entry.get("source")) in task_ids
        ]
