"""Colouring group log lines by task, as ``stern`` does: on a terminal only, never in a pipe or file.

A group's log (``GET /v1/groups/{name}/logs``) is lines of ``<task-id> | <line>``. On a terminal,
each task's prefix gets a colour of its own (in the order tasks first appear), so that the lines of
one task can be followed by eye; piped, the bytes go out as the gateway sent them. ``NO_COLOR``
(https://no-color.org) turns colour off on a terminal too.
"""

from __future__ import annotations

import os
from typing import BinaryIO

SEPARATOR = b" | "
#: ANSI foreground colours that read on dark and light backgrounds alike
PALETTE = (b"36", b"33", b"35", b"32", b"34", b"91", b"96", b"93", b"95", b"92")


def wants_colour(out: BinaryIO) -> bool:
    return out.isatty() and not os.environ.get("NO_COLOR")


class PrefixColours:
    """Writes a group log's bytes, colouring each line's task prefix; partial lines wait."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.colours: dict[bytes, bytes] = {}
        self.partial = b""

    def colour(self, task_id: bytes) -> bytes:
        found = self.colours.get(task_id)
        if found is None:
            found = self.colours[task_id] = PALETTE[len(self.colours) % len(PALETTE)]
        return found

    def line(self, line: bytes) -> bytes:
        task_id, sep, rest = line.partition(SEPARATOR)
        if not sep:
            return line
        return b"\x1b[" + self.colour(task_id) + b"m" + task_id + b"\x1b[0m" + sep + rest

    def write(self, chunk: bytes) -> None:
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        if lines:
            self.out.write(b"".join(self.line(line) + b"\n" for line in lines))

    def close(self) -> None:
        if self.partial:
            self.out.write(self.line(self.partial))
            self.partial = b""
