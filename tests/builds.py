"""Builds as CI makes them: an artifact (a tar.gz holding ``build.txt`` with the build's id) served
by the README's own example task, ``python3 -m http.server``, which answers ``GET /build.txt`` with
the build that runs. A health check on that path makes a task ready only once its build is unpacked."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from tests.tasks import TASK_PYTHON

#: the README's example task, run in the sandbox where the artifact was unpacked
HTTP_SERVER = f"{TASK_PYTHON} -m http.server --bind 127.0.0.1 $PORT0"


def make_artifact(directory: Path, build_id: str, *, files: dict[str, str] | None = None) -> tuple[str, str]:
    """Write ``<build_id>.tar.gz`` into ``directory`` (readable by tasks' uids); its file:// URI and
    sha256. It holds ``files`` (name -> text), by default only ``build.txt`` with the build's id."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (files if files is not None else {"build.txt": f"{build_id}\n"}).items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    path = directory / f"{build_id}.tar.gz"
    path.write_bytes(buf.getvalue())
    path.chmod(0o644)
    return path.as_uri(), hashlib.sha256(buf.getvalue()).hexdigest()
