"""A simulated task's sandbox: what its executor and command "printed", served like ``/files/read``
(for real command tasks, the files of its sandbox directory: see ``executor.py``).

Real agents attach each executor's latest run at ``/frameworks/<fid>/executors/<eid>/runs/latest`` and
``/files/read?path=&offset=&length=`` answers ``{"data", "offset"}``: offset -1 (the default) means the
end of the file, so it returns the size; length defaults to the rest of the file and is capped at 16
pages; an offset at or past the end answers the size and no data; an unknown path is a 404.

:func:`script` is a tiny command executor for tests that launch shell commands: ``echo ... [>&2]``,
``sleep N``, ``exit N``, ``true``/``false`` joined by ``;``. Anything else counts as a program that
runs until killed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tests.mesos_sim.httpserver import Response

PAGE_CAP = 16 * 4096
_LATEST = re.compile(r"/frameworks/([^/]+)/executors/([^/]+)/runs/latest(?:/(.*))?")


@dataclass
class Sandbox:
    """In memory; or, for real command tasks (``directory`` set), the files of the task's sandbox."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    directory: Path | None = None

    def write(self, stream: str, text: str) -> None:
        if self.directory is not None:
            with (self.directory / ("stderr" if stream == "stderr" else "stdout")).open("a") as f:
                f.write(text)
            return
        buf = self.stderr if stream == "stderr" else self.stdout
        buf += text.encode()

    def read(self, name: str) -> bytes | None:
        """A file's bytes (a path relative to the sandbox); None when there is no such file."""
        if self.directory is None:
            if name not in ("stdout", "stderr"):
                return None
            return bytes(self.stdout if name == "stdout" else self.stderr)
        root = self.directory.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path.read_bytes()

    def is_dir(self, name: str) -> bool:
        if self.directory is None:
            return False
        root = self.directory.resolve()
        path = (root / name).resolve()
        return path.is_relative_to(root) and path.is_dir()


def files_read(sandboxes: dict[tuple[str, str], Sandbox], query: dict[str, str]) -> Response:
    """``/files/read`` over one agent's sandboxes, keyed by (framework id, executor id)."""
    path = query.get("path", "")
    if not path:
        return Response.text(400, "Expecting 'path=value' in query.\n")
    try:
        offset = int(query.get("offset", "-1"))
        length = int(query.get("length", "-1"))
    except ValueError as exc:
        return Response.text(400, f"Failed to parse offset or length: {exc}.\n")
    found = _LATEST.fullmatch(path.rstrip("/"))
    sandbox = sandboxes.get((found.group(1), found.group(2))) if found else None
    if found is None or sandbox is None:
        return Response(404)
    name = found.group(3)
    if not name or sandbox.is_dir(name):
        return Response.text(400, "Cannot read a directory.\n")
    data = sandbox.read(name)
    if data is None:
        return Response(404)
    size = len(data)
    if offset == -1:
        offset = size
    if length == -1:
        length = size - offset
    length = min(length, PAGE_CAP)
    if offset >= size:
        return Response.of_json(200, {"offset": size, "data": ""})
    chunk = data[offset : offset + max(length, 0)]
    return Response.of_json(200, {"offset": offset, "data": chunk.decode("utf-8", "replace")})


@dataclass(frozen=True)
class Step:
    kind: str  # out | sleep | exit | block
    stream: str = "stdout"
    text: str = ""
    seconds: float = 0.0
    code: int = 0


def script(command: str) -> list[Step]:
    """What the simulated command does, step by step; always ends in ``exit`` or ``block``."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return [Step("block")]
    statements: list[list[str]] = [[]]
    for token in tokens:
        if token == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    steps: list[Step] = []
    status = 0
    for words in (s for s in statements if s):
        verb, args = words[0], words[1:]
        if verb == "exit":
            return [*steps, Step("exit", code=int(args[0]) if args else status)]
        if verb == "echo":
            stream = "stdout"
            if args and args[-1] in (">&2", "1>&2"):
                stream, args = "stderr", args[:-1]
            steps.append(Step("out", stream=stream, text=" ".join(args) + "\n"))
            status = 0
        elif verb == "sleep" and args and args[0] != "infinity":
            steps.append(Step("sleep", seconds=float(args[0])))
            status = 0
        elif verb in ("true", "false"):
            status = 0 if verb == "true" else 1
        else:
            return [*steps, Step("block")]
    return [*steps, Step("exit", code=status)]
