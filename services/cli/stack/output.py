"""The supervisor's stdout: its own lines start with ``bay:``, a service's lines with its name."""

from __future__ import annotations

import sys
from typing import TextIO


def describe_exit(returncode: int) -> str:
    return f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"


class Output:
    def __init__(self, stream: TextIO | None = None, name_width: int = 8) -> None:
        self.stream = stream or sys.stdout
        self.name_width = name_width

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # nobody reads our output any more (closed pipe): keep supervising

    def say(self, text: str) -> None:
        self._write(f"bay: {text}")

    def child(self, name: str, line: str) -> None:
        self._write(f"{name:<{self.name_width}} | {line}")
