"""The Mesos backend's own table of its tasks: the agent each one runs on, and whether it has ended.

Why the backend keeps a table beside the scheduler's fold of the event log: the port names a task by
its id alone (``kill``, ``reconcile``, ``logs``) or not at all (``usage``), while Mesos reaches a task
through its agent: the sandbox files and the statistics are the agent's, and KILL and RECONCILE name
it. Events about many tasks at once need the live tasks of one agent (an agent lost) or of the whole
framework (the framework replaced: the old one's tasks are asked about). The fold holds all of that
too, but it is the service's, built from the statuses this backend hands over; the port passes
nothing back, and a second reader of the event log here would be a second fold. So the table holds
only what the backend learnt itself, from its launches and from the master's updates (a task
re-adopted after a restart enters with its first update, the answer to the start-up reconciliation).

What it holds: task id -> agent id, for tasks launched or reported and not ended, and for the
``ENDED_KEPT`` that ended last (their logs can still be read, and a log being followed knows the task
is over). Not the task's state, which the fold has, nor its hostname, which ``agents.py`` has per
agent. Bounded: a task leaves the live tasks when a terminal status comes, and the ended ones leave
oldest first.
"""

from __future__ import annotations

ENDED_KEPT = 10_000  # ended tasks remembered (for their logs) before the oldest are forgotten


class TaskTable:
    def __init__(self, ended_kept: int = ENDED_KEPT) -> None:
        self._live: dict[str, str] = {}
        self._ended: dict[str, str] = {}  # insertion order: the oldest first
        self._ended_kept = ended_kept

    def launched(self, task_id: str, agent_id: str) -> None:
        self._ended.pop(task_id, None)
        self._live[task_id] = agent_id

    def reported(self, task_id: str, agent_id: str, terminal: bool) -> None:
        """A status from the master (or made up in its place); ``agent_id`` may be "" (unknown)."""
        known = self._live.get(task_id) or self._ended.get(task_id)
        if known is None and not agent_id:
            return  # a task the master knows nothing of either: nothing to reach it by
        agent_id = agent_id or known or ""
        if not terminal:
            self._ended.pop(task_id, None)  # an agent that came back: its tasks are alive again
            self._live[task_id] = agent_id
            return
        if task_id in self._ended:
            self._ended[task_id] = agent_id  # a repeated end keeps its place in the queue
            return
        self._live.pop(task_id, None)
        self._ended[task_id] = agent_id
        while len(self._ended) > self._ended_kept:
            del self._ended[next(iter(self._ended))]

    def agent_of(self, task_id: str) -> str | None:
        """The task's agent ("" if unknown); None for a task not in the table."""
        found = self._live.get(task_id)
        return found if found is not None else self._ended.get(task_id)

    def ended(self, task_id: str) -> bool:
        return task_id not in self._live

    def live(self) -> list[str]:
        return list(self._live)

    def live_on(self, agent_id: str) -> list[str]:
        return [task_id for task_id, agent in self._live.items() if agent == agent_id]

    def live_by_agent(self) -> dict[str, set[str]]:
        by_agent: dict[str, set[str]] = {}
        for task_id, agent_id in self._live.items():
            by_agent.setdefault(agent_id, set()).add(task_id)
        return by_agent
