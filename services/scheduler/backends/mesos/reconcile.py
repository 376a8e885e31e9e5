"""KILL and RECONCILE: the calls about tasks already launched, which must reach the master in the end.

Either may come while there is no subscription (a master failing over, a dropped connection). A kill
is then kept, with its grace, until the next subscription, and dropped once the task has ended some
other way; a reconciliation is kept as the task ids it asked about. After every subscription the kept
kills are sent again, then the kept task ids are asked about, then every task (implicit
reconciliation), so that whatever changed while disconnected comes back as updates.

A kill names the task's agent when the table knows it (pymesos' own ``killTask`` sends none). A kill of
a task the master does not know is not an error: the master answers it with a reconciliation, i.e. an
update TASK_LOST (REASON_RECONCILIATION) through the sink, which is how the scheduler learns that the
task is gone; so :meth:`Reconciler.kill` never raises NotFound.
"""

from __future__ import annotations

import logging
from typing import Any

from .calls import MasterCalls
from .jobs import Jobs
from .tasks import TaskTable

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]


class Reconciler:
    def __init__(self, calls: MasterCalls, tasks: TaskTable, jobs: Jobs) -> None:
        self._calls = calls
        self._tasks = tasks
        self._jobs = jobs
        self._pending_kills: dict[str, float] = {}  # task id -> grace, not sent yet
        self._pending_reconcile: set[str] = set()

    async def kill(self, task_id: str, grace_seconds: float = 10.0) -> None:
        """A KILL call with the grace as kill policy; while disconnected, sent after re-subscribing."""
        body: Json = {
            "task_id": {"value": task_id},
            "kill_policy": {"grace_period": {"nanoseconds": int(max(grace_seconds, 0.0) * 1e9)}},
        }
        if agent_id := self._tasks.agent_of(task_id):
            body["agent_id"] = {"value": agent_id}
        self._pending_kills[task_id] = grace_seconds
        if await self._calls.send("KILL", body):
            self._pending_kills.pop(task_id, None)

    async def reconcile(self, task_ids: list[str]) -> None:
        """Ask the master (empty: about every task); its answers come as updates with
        REASON_RECONCILIATION."""
        tasks: list[Json] = []
        for task_id in task_ids:
            item: Json = {"task_id": {"value": task_id}}
            if agent_id := self._tasks.agent_of(task_id):
                item["agent_id"] = {"value": agent_id}
            tasks.append(item)
        if not await self._calls.send("RECONCILE", {"tasks": tasks}):
            self._pending_reconcile.update(task_ids)  # implicit reconciliation follows any subscription

    def ended(self, task_id: str) -> None:
        """The task reached a terminal state: a kill not sent yet is not needed any more."""
        self._pending_kills.pop(task_id, None)

    def agent_lost(self, agent_id: str) -> None:
        """The master sends LOST updates for the agent's tasks; asking about them explicitly as well
        makes sure each one ends up terminal in the sink whatever the master version does."""
        ours = self._tasks.live_on(agent_id)
        log.warning("agent %s lost with %d of our tasks", agent_id, len(ours))
        if ours:
            self._jobs.spawn(self.reconcile(ours))

    async def resubscribed(self, new_framework: bool) -> None:
        """Kept kills, then kept reconciliations, then all. A new framework (the old one was removed)
        is asked about the old one's live tasks too: the master answers that they are lost."""
        for task_id, grace in list(self._pending_kills.items()):
            await self.kill(task_id, grace)
        explicit = set(self._pending_reconcile)
        if new_framework:
            explicit |= set(self._tasks.live())
        self._pending_reconcile.clear()
        if explicit:
            await self.reconcile(sorted(explicit))
        await self.reconcile([])
