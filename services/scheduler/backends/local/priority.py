"""Tasks run below the platform's CPU priority: a task that burns every core leaves the scheduler's
launches and health checks, DNS and the registry their share.

The task's wrapper, still waiting for its go (``spawn.py``), takes the configured niceness, which all
it starts inherits; a task cannot lower it (no-new-privs, no CAP_SYS_NICE). Where the kernel shares
CPU time between sessions first (autogroup: ``/proc/sys/kernel/sched_autogroup_enabled``), a task's
session (it is a session leader) is a group of its own whose share only the group's niceness sets, so
that is set as well. It is a priority, not a limit: a task can start a new session of its own at the
autogroup default; the cgroup limits (``cgroups.py``) bound a hostile task.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("bay.scheduler.local")


def set_autogroup_nice(pid: int, nice: int) -> None:
    """The niceness of ``pid``'s autogroup; nothing where there is no autogroup."""
    try:
        fd = os.open(f"/proc/{pid}/autogroup", os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        os.write(fd, str(nice).encode())
    finally:
        os.close(fd)


class TaskPriority:
    def __init__(self, nice: int) -> None:
        self.nice = nice
        self._warned = False

    def lower(self, pid: int) -> None:
        """``pid`` (and its autogroup) to the tasks' niceness; a refusal is logged once, not raised."""
        if self.nice <= 0:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, pid, self.nice)
            set_autogroup_nice(pid, self.nice)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("tasks run at the scheduler's priority (niceness %s refused: %s)", self.nice, exc)
