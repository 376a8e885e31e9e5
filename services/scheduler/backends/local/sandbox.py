"""A task's sandbox on disk: what a restarted backend needs to re-adopt it or learn how it ended.

Layout of ``<work_dir>/sandboxes/<task_id>/`` (``BAY_SANDBOX``):
  logs/            the task's output: stdout, stderr and their rotated stdout.1... (``logwriter.py``)
  stdout.fifo, stderr.fifo   where the command's output reaches the task's log writer
  wrapper.log      what the wrapper shell itself says (nothing, unless something is badly wrong)
  stdout, stderr   the task's output in sandboxes made before logs were rotated (still read)
  task.json        spec, pid, process start ticks, start time, assigned ports, uid
  exit_code        written by the wrapper when the task's command returns
  kill_requested   the kill deadline: a restarted backend finishes an interrupted kill
  final.json       the terminal status, written once the sink took it (never reported twice)
  work/            the task's working directory and HOME: the only place it can write

The sandbox belongs to the platform (root, mode 0750, group: the task's own), so the task
reads its record but cannot rewrite it: a task that could edit ``task.json`` could make a restarted
scheduler adopt, and later kill, any process of the machine, and a symlink planted where the
platform writes would let it write any file. Only ``work/`` (0700), ``exit_code``, the two fifos and
``logs/`` belong to the task's uid; ``logs/`` is written by the task's own log writer, which rotates
(renames, creates) there, and the scheduler only reads it: without following links, and only plain
files (``logs.py``), so a task can show nothing there but its own output. No other task can enter
(not in the group), nor list ``sandboxes/`` (0711).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.scheduler.ports import Artifact, HealthCheckSpec, LaunchSpec, TaskState, TaskStatus

from . import logs


def spec_to_json(spec: LaunchSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["env"], data["ports"], data["labels"] = dict(spec.env), dict(spec.ports), dict(spec.labels)
    return data


def spec_from_json(data: dict[str, Any]) -> LaunchSpec:
    data = dict(data)
    check = data.pop("health_check", None)
    fetch = tuple(Artifact(**a) for a in data.pop("fetch", ()))
    return LaunchSpec(
        **{**data, "args": tuple(data.get("args", ()))},
        health_check=HealthCheckSpec(**check) if check else None,
        fetch=fetch,
    )


FIFOS = ("stdout.fifo", "stderr.fifo")
SANDBOXES_MODE = 0o711  # tasks pass through to their own sandbox; nobody lists the others
SANDBOX_MODE = 0o750
FILE_MODE = 0o640
WORK_MODE = 0o700


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    if os.geteuid() == 0:  # the task reads its record, in the sandbox's group
        os.fchown(fd, 0, path.parent.stat().st_gid)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Sandbox:
    path: Path

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def work(self) -> Path:
        return self.path / "work"

    def prepare(self, uid: int | None, gid: int | None) -> None:
        """Create the sandbox for a task of ``uid``/``gid`` (None: the scheduler's own user)."""
        self.path.mkdir(mode=SANDBOX_MODE, parents=True, exist_ok=True)
        self.work.mkdir(mode=WORK_MODE, exist_ok=True)
        self.logs.mkdir(mode=SANDBOX_MODE, exist_ok=True)
        for name in FIFOS:
            with contextlib.suppress(FileExistsError):
                os.mkfifo(self.path / name, 0o600)
        for name in ("wrapper.log", "exit_code"):
            fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
            os.fchmod(fd, FILE_MODE)  # the mode given to open is masked by the umask
            os.close(fd)
        os.chmod(self.path, SANDBOX_MODE)
        os.chmod(self.work, WORK_MODE)
        os.chmod(self.logs, SANDBOX_MODE)
        if uid is not None and gid is not None:
            for name in (".", "wrapper.log"):
                os.chown(self.path / name, 0, gid)
            for name in ("work", "logs", *FIFOS):
                os.chown(self.path / name, uid, gid, follow_symlinks=False)
            os.chown(self.path / "exit_code", uid, gid)
            os.chmod(self.path / "exit_code", 0o600)
        for name in ("stdout", "stderr"):  # there from the start (a reader sees them empty)
            fd = os.open(self.logs / name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            if uid is not None and gid is not None:
                os.fchown(fd, uid, gid)
            os.close(fd)

    def stream(self, name: str) -> Path:
        """The stream's current file (its rotated ones beside it, ``logs.py``)."""
        if name not in ("stdout", "stderr"):
            raise ValueError(f"unknown log stream {name!r} (stdout or stderr)")
        return self.logs / name if self.logs.is_dir() else self.path / name

    def write_task(
        self, spec: LaunchSpec, pid: int, start_ticks: int, started_at: float, uid: int | None
    ) -> None:
        doc = {
            "spec": spec_to_json(spec),
            "pid": pid,
            "start_ticks": start_ticks,
            "started_at": started_at,
            "uid": uid,
        }
        _write_atomic(self.path / "task.json", json.dumps(doc, indent=1))

    def read_task(self) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads((self.path / "task.json").read_text())
        except (OSError, ValueError):
            return None
        return doc

    def exit_code(self) -> int | None:
        try:
            return int((self.path / "exit_code").read_text().strip())
        except (OSError, ValueError):
            return None

    def mark_kill(self, deadline: float) -> None:
        _write_atomic(self.path / "kill_requested", str(deadline))

    def kill_deadline(self) -> float | None:
        try:
            return float((self.path / "kill_requested").read_text())
        except (OSError, ValueError):
            return None

    def write_final(self, status: TaskStatus) -> None:
        doc = {**asdict(status), "state": status.state.value}
        _write_atomic(self.path / "final.json", json.dumps(doc))

    def read_final(self) -> TaskStatus | None:
        try:
            doc = json.loads((self.path / "final.json").read_text())
        except (OSError, ValueError):
            return None
        return TaskStatus(**{**doc, "state": TaskState(doc["state"])})

    def last_line(self, name: str = "stderr", limit: int = 4096) -> str:
        """The last line the task printed (or else its wrapper), for a failure's message."""
        return logs.last_line(self.stream(name), limit) or logs.last_line(self.path / "wrapper.log", limit)
