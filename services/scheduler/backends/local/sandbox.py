"""A task's sandbox on disk: what a restarted backend needs to re-adopt it or learn how it ended.

Layout of ``<work_dir>/sandboxes/<task_id>/``:
  stdout, stderr   the task's output
  task.json        spec, pid, process start ticks, start time, assigned ports
  exit_code        written by the wrapper when the task's command returns
  kill_requested   the kill deadline: a restarted backend finishes an interrupted kill
  final.json       the terminal status, written once the sink took it (never reported twice)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.scheduler.ports import HealthCheckSpec, LaunchSpec, TaskState, TaskStatus


def spec_to_json(spec: LaunchSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["env"], data["ports"], data["labels"] = dict(spec.env), dict(spec.ports), dict(spec.labels)
    return data


def spec_from_json(data: dict[str, Any]) -> LaunchSpec:
    data = dict(data)
    check = data.pop("health_check", None)
    return LaunchSpec(
        **{**data, "args": tuple(data.get("args", ()))},
        health_check=HealthCheckSpec(**check) if check else None,
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Sandbox:
    path: Path

    @property
    def stdout(self) -> Path:
        return self.path / "stdout"

    @property
    def stderr(self) -> Path:
        return self.path / "stderr"

    def stream(self, name: str) -> Path:
        if name not in ("stdout", "stderr"):
            raise ValueError(f"unknown log stream {name!r} (stdout or stderr)")
        return self.path / name

    def write_task(self, spec: LaunchSpec, pid: int, start_ticks: int, started_at: float) -> None:
        doc = {"spec": spec_to_json(spec), "pid": pid, "start_ticks": start_ticks, "started_at": started_at}
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
        try:
            with self.stream(name).open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - limit))
                tail = fh.read()
        except OSError:
            return ""
        lines = [line for line in tail.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""
