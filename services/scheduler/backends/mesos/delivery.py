"""Status delivery: each update from the master into the scheduler's sink, acknowledged once stored.

An update is acknowledged only after the sink returned (the service stores it in the event log
there): the master re-sends an unacknowledged update, so a crash in between means a duplicate, never a
loss. Updates go through :class:`updates.Lanes`, in order per task, many tasks at once. The status
handed over names the agent's hostname (an update carries only the agent's id), and a task that
failed on its own (its executor said so) has the last line of its stderr in the message, as the local
backend reports it. Statuses the backend makes up where the master would have (``launches.py``) take
the same way, with nothing to acknowledge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from services.scheduler.ports import StatusSink, TaskState, TaskStatus

from .agents import Agents
from .calls import MasterCalls
from .convert import to_task_status
from .logs import TaskLogs
from .tasks import TaskTable
from .updates import Lanes

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]


class StatusDelivery:
    """``on_ended`` hears of every task whose status in the sink is terminal."""

    def __init__(
        self,
        calls: MasterCalls,
        agents: Agents,
        tasks: TaskTable,
        logs: TaskLogs,
        on_ended: Callable[[str], None],
        clock: Callable[[], float],
        max_concurrent: int,
    ) -> None:
        self._calls = calls
        self._agents = agents
        self._tasks = tasks
        self._logs = logs
        self._on_ended = on_ended
        self._clock = clock
        self._lanes = Lanes(self._deliver, max_concurrent)
        self._sink: StatusSink | None = None

    def start(self, sink: StatusSink) -> None:
        self._sink = sink

    def push(self, raw: Json) -> None:
        """A Mesos TaskStatus (JSON), from the master or made up in its place."""
        self._lanes.push(raw)

    async def close(self) -> None:
        """Updates not through the sink yet are dropped unacknowledged: the master re-sends them."""
        await self._lanes.close()

    async def _deliver(self, raw: Json) -> None:
        """One update into the sink, then its acknowledgement; never raises."""
        try:
            status = await self._status_of(raw)
            self._tasks.reported(status.task_id, status.host_id, status.state.terminal)
            if status.state.terminal:
                self._on_ended(status.task_id)
            assert self._sink is not None, "an update before start"
            await self._sink(status)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("status update %.300r not taken; not acknowledged (the agent re-sends)", raw)
            return
        if raw.get("uuid") and raw.get("agent_id"):
            self._calls.acknowledge(raw)

    async def _status_of(self, raw: Json) -> TaskStatus:
        agent_id = (raw.get("agent_id") or {}).get("value", "")
        ref = self._agents.get(agent_id) if agent_id else None
        if ref is None and agent_id:
            ref = await self._agents.lookup(agent_id)  # not offered to us yet: the master knows it
        status = to_task_status(raw, ref.hostname if ref else "", self._clock())
        if status.state is TaskState.FAILED and raw.get("source") == "SOURCE_EXECUTOR" and agent_id:
            line = await self._logs.last_error_line(status.task_id, agent_id)
            if line and line not in status.message:
                status = replace(status, message=f"{status.message}: {line}" if status.message else line)
        return status
