"""What Mesos' fetcher does with a task's ``CommandInfo.uris`` before the command runs, for the simulator.

Each URI lands in the sandbox under its basename: ``file://`` (or a plain absolute path) is copied,
``http(s)://`` downloaded; ``extract`` (default true, as in mesos.proto) unpacks a recognised archive
(``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``, ``.zip``) into the sandbox, ``executable``
makes the file executable (and is not extracted, as in Mesos); ``output_file`` renames it. Blocking:
callers on an event loop run :func:`fetch` in a thread.

A failure is answered as the agent words it, so the task fails with the message a real agent gives
(``TASK_FAILED``, :data:`REASON`).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

#: The reason of the TASK_FAILED a real agent sends when its fetcher fails (the container did not start).
REASON = "REASON_CONTAINER_LAUNCH_FAILED"
TIMEOUT_SECONDS = 30.0

_TARS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def failure_message(container: str, error: str) -> str:
    """The agent's message for a failed fetch (the fetcher's own error goes to the sandbox's stderr)."""
    return (
        f"Failed to launch container: Failed to fetch all URIs for container '{container}': "
        f"exited with status 1 ({error})"
    )


def fetch(uris: list[dict[str, Any]], sandbox: Path) -> str | None:
    """Fetch each URI into ``sandbox``; None when all went well, else what failed (the first failure)."""
    for uri in uris:
        value = str(uri.get("value", ""))
        try:
            _fetch_one(uri, value, sandbox)
        except (OSError, ValueError, tarfile.TarError, zipfile.BadZipFile, urllib.error.URLError) as exc:
            return f"Failed to fetch '{value}': {exc}"
    return None


def _fetch_one(uri: dict[str, Any], value: str, sandbox: Path) -> None:
    parsed = urlparse(value)
    name = str(uri.get("output_file") or "") or os.path.basename(unquote(parsed.path))
    if not name or name in (".", ".."):
        raise ValueError("the URI names no file")
    target = sandbox / name
    if parsed.scheme in ("", "file"):
        source = Path(unquote(parsed.path))
        if not source.is_absolute():
            raise ValueError("a local URI must be an absolute path")
        shutil.copyfile(source, target)
    elif parsed.scheme in ("http", "https"):
        with urllib.request.urlopen(value, timeout=TIMEOUT_SECONDS) as answer, target.open("wb") as out:
            shutil.copyfileobj(answer, out)
    else:
        raise ValueError(f"unsupported scheme {parsed.scheme!r}")
    if uri.get("executable", False):
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    elif uri.get("extract", True):
        _extract(target, sandbox)


def _extract(path: Path, into: Path) -> None:
    """Unpack an archive (by its name, as the fetcher decides) into ``into``; other files stay as they are."""
    name = path.name.lower()
    if name.endswith(_TARS):
        with tarfile.open(path) as tar:
            tar.extractall(into, filter="data")
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                resolved = (into / member).resolve()
                if not resolved.is_relative_to(into.resolve()):
                    raise ValueError(f"{member} would land outside the sandbox")
            archive.extractall(into)
