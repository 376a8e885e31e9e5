"""Host-wide claims on task uids: two local backends on one machine (two local clusters, two stacks,
a test's second scheduler) never hand out the same uid at once, and neither kills the other's
processes by uid.

Each backend hands out uids round-robin from the start of the same range, and when a task ends it
kills every process left running as the task's uid (what left the process group). Without claims, a
second backend's first task got the first backend's first uid, and its end SIGKILLed the first
backend's task with it.

A claim is a file ``<dir>/<uid>`` naming the owner (the claiming backend's sandboxes directory) and
the task. Every change is made under an exclusive ``flock`` of ``<dir>/.lock``, so a check and the
write that follows it are one step for every backend on the host. A claim is stale, and given to
whoever asks, once its task's sandbox is gone or holds the task's final status (the owner's data
directory was removed, or it ended while its backend was down). The directory is root's alone
(0700): tasks cannot forge or remove claims.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("bay.scheduler.local")

DEFAULT_DIR = Path("/run/bay/task-uids")
DIR_MODE = 0o700


class UidClaims:
    def __init__(self, directory: Path, owner: Path) -> None:
        self.directory = directory
        self.owner = str(owner.resolve())
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(directory, DIR_MODE)
        self._lock_path = directory / ".lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _read(self, uid: int) -> tuple[str, str] | None:
        try:
            doc = json.loads((self.directory / str(uid)).read_text())
            return str(doc["owner"]), str(doc["task"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _live(owner: str, task_id: str) -> bool:
        sandbox = Path(owner) / task_id
        return sandbox.is_dir() and not (sandbox / "final.json").exists()

    def claim(self, uid: int, task_id: str) -> bool:
        """Claim ``uid`` for ``task_id``; False when another backend's live task holds it."""
        with self._locked():
            held = self._read(uid)
            if held is not None and held[0] != self.owner and self._live(*held):
                return False
            path = self.directory / str(uid)
            tmp = self.directory / f".{uid}.tmp"
            tmp.write_text(json.dumps({"owner": self.owner, "task": task_id}))
            os.replace(tmp, path)
            return True

    def release(self, uid: int) -> None:
        """Give ``uid`` back, if this backend holds it."""
        with self._locked():
            held = self._read(uid)
            if held is not None and held[0] == self.owner:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / str(uid)).unlink()

    def held_by_another(self, uid: int) -> bool:
        """Whether another backend's live task holds ``uid`` (its processes are not ours to kill)."""
        with self._locked():
            held = self._read(uid)
            return held is not None and held[0] != self.owner and self._live(*held)


def open_claims(directory: Path | None, owner: Path) -> UidClaims | None:
    """The host's claims (None when ``directory`` is None, or it cannot be made: then logged)."""
    if directory is None:
        return None
    try:
        return UidClaims(directory, owner)
    except OSError as exc:
        log.warning(
            "task uid claims unavailable in %s (%s): another local backend on this host may hand out "
            "the same uids",
            directory,
            exc.strerror or exc,
        )
        return None
