"""What the local backend knows of one task it started or re-adopted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

from services.scheduler.ports import LaunchSpec, TaskState, TaskStatus

from .sandbox import Sandbox


@dataclass
class RunningTask:
    spec: LaunchSpec
    sandbox: Sandbox
    ports: dict[str, int] = field(default_factory=dict)
    pid: int = 0
    start_ticks: int = 0
    uid: int | None = None  # the task's own uid (None: it runs as the scheduler's user)
    child: Popen[bytes] | None = None  # held so that subprocess never reaps it behind our back
    state: TaskState = TaskState.STAGING
    last: TaskStatus | None = None
    killing: bool = False
    sigkilled: bool = False
    cgroup: Path | None = None
    collecting: bool = False  # an exit handler owns this task's end: exactly one runs
    pidfd: int | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
