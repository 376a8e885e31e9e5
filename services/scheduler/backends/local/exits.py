"""How a local task ended, in the words its status carries: from whether it was being killed, the
exit code its wrapper recorded (or the wait status, when the backend reaped it itself) and the last
line of its stderr. Pure."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

from services.scheduler.ports import TaskState

from . import fetch

LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"  # what Mesos says when its fetcher fails


@dataclass(frozen=True)
class Outcome:
    state: TaskState
    message: str
    reason: str = ""
    exit_code: int | None = None


def signal_text(code: int) -> str:
    if code > 128:
        with contextlib.suppress(ValueError):
            return f" ({signal.Signals(code - 128).name})"
    return ""


def outcome(
    *, killing: bool, sigkilled: bool, code: int | None, wait_status: int | None, last_stderr: str
) -> Outcome:
    if killing:
        how = "SIGKILL after the grace period" if sigkilled else "SIGTERM"
        return Outcome(TaskState.KILLED, f"killed ({how})", exit_code=code)
    if code == 0:
        return Outcome(TaskState.FINISHED, "exited with code 0", exit_code=0)
    # a task whose own wrapper fetched (launched before artifacts.py) can still end so
    if code == fetch.FETCH_EXIT and last_stderr.startswith(fetch.PREFIX):
        msg = f"fetching the task's artifact failed: {last_stderr.removeprefix(fetch.PREFIX)}"
        return Outcome(TaskState.FAILED, msg, LAUNCH_FAILED, code)
    if code is not None:
        msg = f"exited with code {code}{signal_text(code)}" + (f": {last_stderr}" if last_stderr else "")
        return Outcome(TaskState.FAILED, msg, exit_code=code)
    why = "ended without recording an exit code"
    if wait_status is not None and os.WIFSIGNALED(wait_status):
        why += f" (killed by {signal.Signals(os.WTERMSIG(wait_status)).name})"
    return Outcome(TaskState.FAILED, why)
