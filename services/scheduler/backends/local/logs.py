"""A task's stdout or stderr: the last N lines, then new output while the task runs, across rotation.

The task's log writer (``logwriter.py``) renames ``stdout`` to ``stdout.1`` (``.1`` to ``.2``...)
when it is full and starts a new ``stdout``. A reader keeps the file it reads open: a rename does
not disturb it, and it finishes that file before it goes on to the next newer one, found by the
inode it holds among the files there now. So a follow neither loses nor repeats a line across a
rotation, unless the writer went through a whole ``keep`` files between two looks (that is
``keep * max_bytes`` in one poll interval). The files are in a directory the task owns: each is
opened without following a link, and only a plain file with no other name is read (a fifo would
block the reader; a symbolic or hard link could show what the task may not read, where the kernel
lets it link files of others).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

BLOCK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.1


def _open(path: Path) -> BinaryIO | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _identity(fh: BinaryIO) -> tuple[int, int]:
    st = os.fstat(fh.fileno())
    return st.st_dev, st.st_ino


def rotated(path: Path) -> list[Path]:
    """The stream's files, oldest first: ``stdout.N`` ... ``stdout.1``, then ``stdout``."""
    numbered: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            base, dot, n = entry.name.rpartition(".")
            if dot and base == path.name and n.isdigit():
                numbered.append((int(n), entry))
    return [p for _, p in sorted(numbered, reverse=True)] + [path]


def _open_all(path: Path) -> list[BinaryIO]:
    """The stream's files that are there, oldest first, each once (a rotation while they are
    opened one by one may show one file under two names)."""
    files: list[BinaryIO] = []
    seen: set[tuple[int, int]] = set()
    for p in rotated(path):
        fh = _open(p)
        if fh is None:
            continue
        if (ident := _identity(fh)) in seen:
            fh.close()
            continue
        seen.add(ident)
        files.append(fh)
    return files


def _tail_in(fh: BinaryIO, lines: int) -> tuple[int, int]:
    """Where the last ``lines`` lines of the file begin, and how many lines it holds from there
    (fewer than ``lines`` only when it starts at 0: the rest is in an older file)."""
    size = os.fstat(fh.fileno()).st_size
    end = size
    if size:  # a final newline ends the last line; it does not start a new one
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            end -= 1
    seen, pos = 0, end
    while pos > 0:
        start = max(0, pos - BLOCK)
        fh.seek(start)
        chunk = fh.read(pos - start)
        index = len(chunk)
        while (index := chunk.rfind(b"\n", 0, index)) >= 0:
            seen += 1
            if seen == lines:
                return start + index + 1, lines
        pos = start
    return 0, seen + (1 if size else 0)


def tail_start(path: Path, lines: int) -> list[tuple[BinaryIO, int]]:
    """The files (oldest first) and offsets to read for the last ``lines`` lines of the stream
    (negative: all of it; 0: from the current end). The last one is the current file, if any."""
    files = _open_all(path)
    if lines < 0 or not files:
        return [(fh, 0) for fh in files]
    if lines == 0:
        for fh in files[:-1]:
            fh.close()
        return [(files[-1], os.fstat(files[-1].fileno()).st_size)]
    picked: list[tuple[BinaryIO, int]] = []
    need = lines
    while files:
        fh = files.pop()
        offset, found = _tail_in(fh, need)
        picked.insert(0, (fh, offset))
        need -= found
        if need <= 0:
            break
    for fh in files:
        fh.close()
    return picked


def tail_offset(path: Path, lines: int) -> int:
    """The byte offset in ``path`` alone where its last ``lines`` lines begin."""
    fh = _open(path)
    if fh is None:
        return 0
    with fh:
        return 0 if lines < 0 else os.fstat(fh.fileno()).st_size if lines == 0 else _tail_in(fh, lines)[0]


def _newer(path: Path, current: BinaryIO | None) -> list[BinaryIO]:
    """The files written after ``current`` (all of them if it was dropped or there was none)."""
    if current is not None:
        ident = _identity(current)
        try:
            st = os.lstat(path)
        except OSError:
            return []
        if (st.st_dev, st.st_ino) == ident:
            return []  # no rotation since: the quick answer of every poll
    files = _open_all(path)
    idents = [_identity(fh) for fh in files]
    after = idents.index(ident) + 1 if current is not None and ident in idents else 0
    for fh in files[:after]:
        fh.close()
    return files[after:]


def _read_rest(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(BLOCK):
        yield chunk


async def read_log(path: Path, tail: int, follow: bool, ended: Callable[[], bool]) -> AsyncIterator[bytes]:
    """Yield the tail, then (following) what is appended, until the task has ended and all is read."""
    start = tail_start(path, tail)
    current: BinaryIO | None = None
    try:
        for fh, offset in start:
            if current is not None:
                current.close()
            current = fh
            fh.seek(offset)
            for chunk in _read_rest(fh):
                yield chunk
        while True:
            finished = ended()  # read before the last drain: nothing written after the end is missed
            while True:
                if current is not None:
                    for chunk in _read_rest(current):
                        yield chunk
                newer = _newer(path, current)
                if not newer:
                    break
                for fh in newer[:-1]:  # whole files rotated away meanwhile
                    for chunk in _read_rest(fh):
                        yield chunk
                    fh.close()
                if current is not None:
                    current.close()
                current = newer[-1]
            if not follow or finished:
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
    finally:
        for fh, _ in start:
            fh.close()
        if current is not None:
            current.close()


def last_line(path: Path, limit: int = 4096) -> str:
    """The stream's last non-blank line (from the rotated file if the current one is empty)."""
    for p in reversed(rotated(path)[-2:]):
        fh = _open(p)
        if fh is None:
            continue
        with fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - limit))
            tail = fh.read()
        lines = [line for line in tail.decode(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return ""
