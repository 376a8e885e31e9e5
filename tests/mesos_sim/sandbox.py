"""A simulated task's sandbox: what its executor and command "printed", served like ``/files/read``
(for real command tasks, the files of its sandbox directory: see ``executor.py``).

Real agents attach each executor's latest run at ``/frameworks/<fid>/executors/<eid>/runs/latest`` and
``/files/read?path=&offset=&length=`` answers ``{"data", "offset"}``: offset -1 (the default) means the
end of the file, so it returns the size; length defaults to the rest of the file and is capped at 16
pages; an offset at or past the end answers the size and no data; an unknown path is a 404.

:func:`script` is a tiny command executor for tests that launch shell commands: ``echo ... [>&2]``,
``sleep N``, ``exit N``, ``true``/``false`` joined by ``;``. Anything else counts as a program that
runs until killed.

:func:`fetch_uris` is the agent's fetcher (CommandInfo.uris: ``value``, ``extract``, ``executable``,
``output_file``): it downloads each URI (``file://`` or ``http(s)://``) into the sandbox's files and
unpacks archives Mesos recognises by their extension; like Mesos' it checks no digest. The digest
check Bay prefixes to a command (``got=$(sha256sum < F | cut -c1-64); [ "$got" = HEX ] || { echo
"..." >&2; exit N; }; ``, see the Mesos backend's ``taskinfo.py``) is played by :func:`script`
over those files, as a shell would run it.
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tests.mesos_sim.httpserver import Response

PAGE_CAP = 16 * 4096
_LATEST = re.compile(r"/frameworks/([^/]+)/executors/([^/]+)/runs/latest(?:/(.*))?")


@dataclass
class Sandbox:
    """In memory; or, for real command tasks (``directory`` set), the files of the task's sandbox."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    files: dict[str, bytes] = field(default_factory=dict)  # what the fetcher put in the sandbox
    executable: set[str] = field(default_factory=set)
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


ARCHIVES = (".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip")
FETCH_TIMEOUT = 10.0


class FetchError(Exception):
    pass


def _download(uri: str) -> bytes:
    parts = urlsplit(uri)
    try:
        if parts.scheme == "file" or not parts.scheme:
            with open(unquote(parts.path), "rb") as fh:
                return fh.read()
        if parts.scheme in ("http", "https"):
            with urllib.request.urlopen(uri, timeout=FETCH_TIMEOUT) as resp:
                data: bytes = resp.read()
                return data
    except OSError as exc:
        raise FetchError(f"Failed to fetch '{uri}': {exc}") from None
    raise FetchError(f"Unsupported URI scheme in '{uri}'")


def _unpack(name: str, data: bytes, sandbox: Sandbox) -> None:
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if not info.is_dir():
                    sandbox.files[info.filename] = z.read(info)
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for m in tar.getmembers():
            member = tar.extractfile(m) if m.isfile() else None
            if member is not None:
                sandbox.files[m.name.removeprefix("./")] = member.read()
                if m.mode & 0o111:
                    sandbox.executable.add(m.name.removeprefix("./"))


def fetch_uris(uris: list[dict[str, object]], sandbox: Sandbox) -> None:
    """Mesos' fetcher, synchronously (tests serve artifacts from files or a local thread)."""
    for uri in uris:
        value = str(uri.get("value", ""))
        name = str(uri.get("output_file") or PurePosixPath(urlsplit(value).path).name or "artifact")
        data = _download(value)
        sandbox.files[name] = data
        sandbox.write("stdout", f"Fetched '{value}' to '{name}'\n")
        if uri.get("extract") and name.endswith(ARCHIVES):
            try:
                _unpack(name, data, sandbox)
            except (tarfile.TarError, zipfile.BadZipFile) as exc:
                raise FetchError(f"Failed to extract '{name}': {exc}") from None
        if uri.get("executable"):
            sandbox.executable.add(name)


_DIGEST_CHECK = re.compile(
    r'got=\$\(sha256sum < (\S+) \| cut -c1-64\); \[ "\$got" = ([0-9a-f]{64}) \] '
    r'\|\| \{ echo "((?:[^"\\]|\\.)*)\$got" >&2; exit (\d+); \}; '
)


def _digest_checks(command: str, files: dict[str, bytes]) -> tuple[list[Step], str]:
    """Play the leading digest checks: the failing one's output and exit, or none and the rest."""
    while found := _DIGEST_CHECK.match(command):
        name, want, said, code = (
            shlex.split(found.group(1))[0],
            found.group(2),
            found.group(3),
            found.group(4),
        )
        got = hashlib.sha256(files[name]).hexdigest() if name in files else ""
        if got != want:
            text = re.sub(r"\\(.)", r"\1", said) + got + "\n"
            return [Step("out", stream="stderr", text=text), Step("exit", code=int(code))], ""
        command = command[found.end() :]
    return [], command


def script(command: str, files: dict[str, bytes] | None = None) -> list[Step]:
    """What the simulated command does, step by step; always ends in ``exit`` or ``block``."""
    failed, command = _digest_checks(command, files or {})
    if failed:
        return failed
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
