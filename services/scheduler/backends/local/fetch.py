"""Fetching a task's artifacts into its work directory, as the task: the local Mesos fetcher.

This module runs in two places. The backend imports it for :func:`wrapper_args` and the exit code;
the task's wrapper runs it, *as the task's own uid, in its work directory, before the command*, as
``python -I -S -c <this file's source> <plan>`` (see ``spawn.py``): stdlib only, importing nothing of
Bay's, so that an interpreter the task's uid can reach is all it needs (the scheduler's may live in a
private home). Done there, a fetch never blocks the scheduler's event loop, and whatever an archive
holds (links out, ``..``, set-uid bits, devices) can at worst touch what the task itself may.

For each artifact of the plan: download it (``file://`` read, ``http(s)://`` with a timeout and a
size limit) into the work directory under its URI's basename, check its sha256 (a mismatch deletes
the file and fails the task), then unpack it when ``extract`` (tar, tar.gz/tgz, tar.bz2, tar.xz,
zip, told apart by content; members that would land outside the directory are refused, not skipped)
or ``chmod +x`` it when ``executable``. The archive stays beside what it held, as Mesos leaves it.
A failure prints one line, ``bay fetch: <why>``, to stderr and exits :data:`FETCH_EXIT`; the
backend turns that into the task's failure message.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import sys
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import tarfile

# What a fetch of a local archive needs is imported at once; urllib.request (http(s) only), tarfile
# and zipfile (the archive's kind) when used: the wrapper starts this in every task before its
# command, and importing them all cost more than the interpreter's own start.

FETCH_EXIT = 86  # the wrapper's exit code when the fetch failed (the command never ran)
PREFIX = "bay fetch: "
CHUNK = 1 << 16


class FetchFailed(Exception):
    """Why an artifact could not be put in place; the text is the task's failure message."""


def wrapper_args(python: str, plan: dict[str, Any]) -> list[str]:
    """What the wrapper runs as ``"$1" -I -S -c "$2" "$3"``: the interpreter, this module's
    source and the plan (passed whole: the task's uid need not be able to read Bay's files)."""
    return [python, _source(), json.dumps(plan)]


@functools.cache
def _source() -> str:
    return Path(__file__).read_text()


def task_python(candidates: tuple[str, ...] = ()) -> str:
    """An interpreter every uid can run (every directory above it searchable, the file executable
    by others): this one, else the system's. Tasks run as uids of their own, and ours may live
    in a private home (``/root/.pyenv``)."""
    for path in (*candidates, sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        real = Path(path).resolve()
        try:
            if real.stat().st_mode & stat.S_IXOTH and all(
                p.stat().st_mode & stat.S_IXOTH for p in real.parents
            ):
                return path
        except OSError:
            continue
    return sys.executable


def plan_of(artifacts: list[dict[str, Any]], timeout: float, max_bytes: int) -> dict[str, Any]:
    return {"artifacts": artifacts, "timeout": timeout, "max_bytes": max_bytes}


def file_name(uri: str) -> str:
    """Where an artifact lands: its URI's last path segment (``artifact`` if it has none)."""
    name = PurePosixPath(unquote(urlsplit(uri).path)).name
    return name if name not in ("", ".", "..") else "artifact"


def _open(uri: str, timeout: float, max_bytes: int) -> BinaryIO:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return open(unquote(parts.path), "rb")
    if parts.scheme not in ("http", "https"):
        raise FetchFailed(f"cannot fetch {uri}: only file://, http:// and https:// URIs")
    import urllib.request

    resp = urllib.request.urlopen(uri, timeout=timeout)
    size = resp.headers.get("Content-Length")
    if size is not None and size.isdigit() and int(size) > max_bytes:
        resp.close()
        raise FetchFailed(f"{uri} is {size} bytes, more than the limit of {max_bytes}")
    return resp  # type: ignore[no-any-return]


def download(uri: str, dest: Path, timeout: float, max_bytes: int) -> str:
    """Copy ``uri`` to ``dest`` (created, never overwritten); its sha256."""
    digest = hashlib.sha256()
    deadline = time.monotonic() + timeout  # a whole-download deadline: a trickling server ends too
    total = 0
    try:
        with _open(uri, timeout, max_bytes) as src:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(CHUNK):
                        total += len(chunk)
                        if total > max_bytes:
                            raise FetchFailed(f"{uri} is more than the limit of {max_bytes} bytes")
                        if time.monotonic() > deadline:
                            raise FetchFailed(f"fetching {uri} took more than {timeout:g} s")
                        digest.update(chunk)
                        out.write(chunk)
            except BaseException:
                dest.unlink(missing_ok=True)  # no half of a file left to be taken for the build
                raise
    except FileExistsError:
        raise FetchFailed(f"two artifacts would both be {dest.name}") from None
    except TimeoutError:
        raise FetchFailed(f"fetching {uri} timed out after {timeout:g} s") from None
    except OSError as exc:  # urllib's errors are OSErrors too (imported only if http was used)
        error = sys.modules.get("urllib.error")
        if error is not None and isinstance(exc, error.HTTPError):
            raise FetchFailed(f"cannot fetch {uri}: HTTP {exc.code} {exc.reason}") from None
        if error is not None and isinstance(exc, error.URLError):
            raise FetchFailed(f"cannot fetch {uri}: {exc.reason}") from None
        raise FetchFailed(f"cannot fetch {uri}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _inside(name: str, what: str) -> PurePosixPath:
    """A member's path, relative and without ``..``; FetchFailed otherwise."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise FetchFailed(f"refused to unpack {what}: member {name!r} would land outside the sandbox")
    return path


def _check_tar(tar: tarfile.TarFile, what: str) -> None:
    for m in tar.getmembers():
        path = _inside(m.name, what)
        if m.issym() or m.islnk():
            # a symbolic link is relative to where it is; a hard link names a member
            target = PurePosixPath(m.linkname)
            if target.is_absolute() or _escapes(path.parent / target if m.issym() else target):
                raise FetchFailed(f"refused to unpack {what}: link {m.name!r} points outside ({m.linkname})")
        elif not (m.isfile() or m.isdir()):
            raise FetchFailed(f"refused to unpack {what}: {m.name!r} is a device or fifo")


def _escapes(path: PurePosixPath) -> bool:
    """Whether a relative path climbs above where it starts (``a/../..``)."""
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def extract(archive: Path, into: Path, uri: str) -> None:
    """Unpack a tar (any compression) or zip archive into ``into``; refuse members that escape."""
    what = uri
    with open(archive, "rb") as fh:
        magic = fh.read(4)
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (or an empty one)
        import zipfile

        try:
            with zipfile.ZipFile(archive) as z:
                infos = z.infolist()
                for info in infos:
                    _inside(info.filename, what)
                z.extractall(into)
                for info in infos:  # zip keeps unix modes in the high bits: keep the exec ones
                    if not info.is_dir() and (info.external_attr >> 16) & 0o111:
                        target = into / info.filename
                        target.chmod(target.stat().st_mode | stat.S_IXUSR)
        except zipfile.BadZipFile as exc:
            raise FetchFailed(f"cannot unpack {uri}: a broken zip archive ({exc})") from None
        return
    import tarfile

    try:
        with tarfile.open(archive, "r:*") as tar:
            _check_tar(tar, what)
            # "data" also drops owners, set-uid bits and the like (Python >= 3.11.4)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:  # pragma: no cover (older 3.11: the checks above are what guard it)
                tar.extractall(into)
    except tarfile.TarError as exc:
        raise FetchFailed(f"cannot unpack {uri}: not a tar or zip archive ({exc})") from None


def fetch(artifact: dict[str, Any], into: Path, timeout: float, max_bytes: int) -> Path:
    uri, expected = artifact["uri"], artifact["sha256"].lower()
    dest = into / file_name(uri)
    actual = download(uri, dest, timeout, max_bytes)
    if actual != expected:
        dest.unlink()
        raise FetchFailed(f"sha256 mismatch for {uri}: expected {expected}, got {actual}")
    if artifact.get("extract"):
        extract(dest, into, uri)
    if artifact.get("executable"):
        dest.chmod(dest.stat().st_mode | stat.S_IXUSR)
    return dest


def main(args: list[str]) -> int:
    plan = json.loads(args[0])
    try:
        for artifact in plan["artifacts"]:
            # relative paths: the task may not be able to walk down to its sandbox from /
            fetch(artifact, Path("."), float(plan["timeout"]), int(plan["max_bytes"]))
    except FetchFailed as exc:
        print(f"{PREFIX}{exc}", file=sys.stderr)
        return FETCH_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
