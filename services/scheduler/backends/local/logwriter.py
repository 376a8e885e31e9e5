"""A task's log writer: its stdout and stderr, from two fifos into files rotated by size.

Like ``fetch.py``, this module runs in two places. The backend imports it for :func:`writer_args`;
the task's wrapper starts it in the background, *as the task's own uid*, as
``python -I -S -c <this file's source> <max_bytes> <keep> <logs dir> <exit_code file>`` with the
fifos of the command's stdout on its stdin and of its stderr on fd 3 (see ``spawn.py``): stdlib
only, importing nothing of Bay's. It belongs to the task (as Mesos' logrotate container logger
does): a scheduler killed or restarted changes nothing for it, its memory and CPU count as the
task's, and a task that kills it loses only its own output.

Each stream goes to ``<logs>/<stream>``; once that holds ``max_bytes``, it becomes
``<stream>.1`` (``.1`` becomes ``.2`` ... up to ``.<keep>``; the oldest is dropped), and a new
file starts. A cut falls at the last line end that fits, so that a line is split across two
files only when it alone is longer than the limit. The writer ends when both fifos reach their
end (the command and everything it started closed them); when something the command left behind
keeps them open, it ends once the wrapper wrote the command's exit code, after one last drain of
what is already written (everything the command itself printed: it has ended).
"""

from __future__ import annotations

import _signal as signal  # not ``signal``: it imports enum, which would double the writer's start
import os
import select
import stat
import sys
import time

# Few modules, and small ones: a writer starts with every task, and pathlib, functools or enum would
# make its start cost about three times what it costs without them (7 ms of CPU).

CHUNK = 1 << 16
#: how often the writer looks for the exit code while something keeps the fifos open
EXIT_CHECK_SECONDS = 0.1
#: the most read in the last drain (a leftover that keeps printing must not keep the task alive)
LAST_DRAIN_BYTES = 16 << 20
STREAMS = ("stdout", "stderr")


def writer_args(python: str, max_bytes: int, keep: int) -> list[str]:
    """What the wrapper runs as ``"$py" -I -S -c "$src" "$max" "$keep" <logs dir> <exit_code>``."""
    return [python, _source(), str(max_bytes), str(keep)]


_SOURCE: list[str] = []


def _source() -> str:
    if not _SOURCE:
        with open(__file__) as fh:
            _SOURCE.append(fh.read())
    return _SOURCE[0]


class RotatingFile:
    """One stream's current file and its rotated predecessors."""

    def __init__(self, path: str, max_bytes: int, keep: int) -> None:
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self.fd = -1
        self.size = 0
        self._open()

    def _open(self) -> None:
        """The file, appended to; what the task put in its place (a link, a fifo: the writer would
        follow it or block) is replaced by a new file."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path, flags, 0o640)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise IsADirectoryError(self.path)  # as for anything that is not a plain file
        except OSError:
            if os.path.isdir(self.path) and not os.path.islink(self.path):
                os.rename(self.path, f"{self.path}.dir")  # the task's own: moved aside, not deleted
            else:
                os.unlink(self.path)
            fd = os.open(self.path, flags | os.O_EXCL, 0o640)
        os.set_blocking(fd, True)
        self.fd, self.size = fd, os.fstat(fd).st_size

    def rotate(self) -> None:
        os.close(self.fd)
        path = self.path
        try:
            if self.keep <= 0:
                os.unlink(path)
            else:
                for n in range(self.keep - 1, 0, -1):
                    if os.path.lexists(f"{path}.{n}"):
                        os.replace(f"{path}.{n}", f"{path}.{n + 1}")
                os.replace(path, f"{path}.1")
        except OSError:
            pass  # the task changed its own files (a directory where a file was): it starts anew
        self._open()
        if self.size >= self.max_bytes:  # the rotation failed: the cap holds, the old lines go
            os.ftruncate(self.fd, 0)
            self.size = 0

    def write(self, data: bytes) -> None:
        while data:
            room = self.max_bytes - self.size
            if room <= 0:
                self.rotate()
                continue
            part = data
            if len(data) > room:
                # up to the last line end that fits; none: the line starts the next file, unless
                # this one is empty (a line longer than a whole file is cut where the file is full)
                part = data[: data.rfind(b"\n", 0, room) + 1 or (0 if self.size else room)]
                if not part:
                    self.rotate()
                    continue
            written = os.write(self.fd, part)
            self.size += written
            data = data[written:]
            if self.size >= self.max_bytes:
                self.rotate()


def _read(fd: int) -> bytes | None:
    """What the fifo holds now; b"" at its end; None when nothing is there yet."""
    try:
        return os.read(fd, CHUNK)
    except BlockingIOError:
        return None


def _ended(exit_code: str) -> bool:
    try:
        return os.stat(exit_code).st_size > 0
    except OSError:
        return False


def run(max_bytes: int, keep: int, logs: str, exit_code: str, fds: tuple[int, int] = (0, 3)) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # a kill of the task's group: drain until the command ends
    paths = (os.path.join(logs, name) for name in STREAMS)
    files = {fd: RotatingFile(path, max_bytes, keep) for fd, path in zip(fds, paths, strict=True)}
    open_fds = set(fds)
    for fd in fds:
        os.set_blocking(fd, False)
    next_check = time.monotonic() + EXIT_CHECK_SECONDS
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], EXIT_CHECK_SECONDS)
        for fd in ready:
            data = _read(fd)
            if data == b"":
                open_fds.discard(fd)
            elif data:
                files[fd].write(data)
        now = time.monotonic()
        if open_fds and now >= next_check:
            next_check = now + EXIT_CHECK_SECONDS
            if _ended(exit_code):
                _last_drain(open_fds, files)
                return


def _last_drain(open_fds: set[int], files: dict[int, RotatingFile]) -> None:
    for fd in open_fds:
        left = LAST_DRAIN_BYTES
        while left > 0 and (data := _read(fd)):
            files[fd].write(data)
            left -= len(data)


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
