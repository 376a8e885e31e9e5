"""Ending a task's process group: SIGTERM to each of its processes (once each, including ones that
appear during the grace: a command the wrapper was just starting must not miss its SIGTERM), then
SIGKILL of the whole group when the grace is over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from . import procfs, strays

POLL_SECONDS = 0.05
#: the groups being ended, from one /proc pass per poll for all of them
SCAN = procfs.GroupScan(max_age=POLL_SECONDS)


def terminate_group(pgid: int, signalled: set[int], *, fresh: bool = False) -> set[int]:
    """SIGTERM every process of group ``pgid`` not in ``signalled``; returns ``signalled`` grown.
    ``fresh``: from a pass of its own (the first SIGTERM of a kill), else from the shared one."""
    for pid in procfs.group_members(pgid) if fresh else SCAN.members(pgid):
        if pid not in signalled:
            signalled.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
    return signalled


async def escalate(pgid: int, exited: asyncio.Event, grace_seconds: float, signalled: set[int]) -> bool:
    """Keep terminating the group until ``exited`` is set or the grace is over, then SIGKILL it.
    True when it came to the SIGKILL."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_seconds
    terminate_group(pgid, signalled)  # the shared pass: the kill's own first one came before
    while (remaining := deadline - loop.time()) > 0:
        try:
            await asyncio.wait_for(exited.wait(), min(POLL_SECONDS, remaining))
            return False
        except TimeoutError:
            terminate_group(pgid, signalled)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return True


def end_leftovers(pgid: int, uid: int | None) -> None:
    """SIGKILL what is left of an ended task: its group (the zombie leader still holds the pgid, so
    it is not reused meanwhile), and what left the group (setsid, a daemon) but not the task's uid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    if uid is not None:
        for pid in strays.of_uid(uid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
