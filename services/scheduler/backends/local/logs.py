"""A task's stdout or stderr: the last N lines, then new output while the task runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

BLOCK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.1


def tail_offset(path: Path, lines: int) -> int:
    """The byte offset where the last ``lines`` lines of the file begin (negative: the whole file)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if lines < 0:
        return 0
    if lines == 0:
        return size
    with path.open("rb") as fh:
        end = size
        # A final newline ends the last line; it does not start a new one.
        if size:
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                end -= 1
        seen, pos = 0, end
        while pos > 0:
            start = max(0, pos - BLOCK)
            fh.seek(start)
            chunk = fh.read(pos - start)
            index = len(chunk)
            while True:
                index = chunk.rfind(b"\n", 0, index)
                if index < 0:
                    break
                seen += 1
                if seen == lines:
                    return start + index + 1
            pos = start
    return 0


async def read_log(path: Path, tail: int, follow: bool, ended: Callable[[], bool]) -> AsyncIterator[bytes]:
    """Yield the tail, then (following) what is appended, until the task has ended and all is read."""
    offset = tail_offset(path, tail)
    while True:
        finished = ended()  # read before the last drain: nothing written after the end is missed
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                while chunk := fh.read(BLOCK):
                    offset += len(chunk)
                    yield chunk
        except FileNotFoundError:
            pass
        if not follow or finished:
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
