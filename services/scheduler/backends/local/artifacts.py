"""A build's artifacts fetched once per backend, then copied into each of its tasks' work directories
(as Mesos' fetcher cache does for CommandInfo URIs with ``cache``).

A rolling deploy starts a hundred tasks of one build at once. Fetching in each task's wrapper
started a Python interpreter per task just to read, check and unpack the same archive, a hundred
times over (and downloaded it a hundred times over http). Now the first launch of a set of artifacts
runs the fetcher (``fetch.py``, unchanged: sha256 check, unpacking that refuses members and links
that escape, devices and fifos) once, as a uid of its own from the task range (never root), in a
directory of the cache; every other launch of the same set waits for that one. The cache is root's
alone (0700), so neither tasks nor the uid that fetched (once it is given back) can reach it.

Each task then gets a copy of the tree in its ``work/``, owned by its uid: symbolic links are copied
as links (never followed), and ``chown`` clears set-uid bits. A fetch that fails is not kept: the
task fails with the fetcher's message (reason: the launch failed, as Mesos says when its fetcher
fails), and the next launch tries again (the scheduler's launch backoff paces that).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from services.scheduler.ports import Artifact

from . import fetch, strays
from .identity import UidPool

log = logging.getLogger("bay.scheduler.local")

CACHE_MODE = 0o700
KEEP = 16  # sets of artifacts kept (the oldest go first)
STDERR_LIMIT = 64 << 10


class FetchError(Exception):
    """The fetcher's message for a set of artifacts it could not put in place."""


def key_of(artifacts: Sequence[Artifact]) -> str:
    doc = json.dumps([asdict(a) for a in artifacts], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:32]


class ArtifactCache:
    def __init__(
        self, root: Path, python: str, uids: UidPool, timeout: float, max_bytes: int, keep: int = KEEP
    ) -> None:
        self.root = root
        self.python = python
        self.uids = uids
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.keep = keep
        self._filling: dict[str, asyncio.Future[Path]] = {}
        self._order: list[str] = []
        root.mkdir(mode=CACHE_MODE, parents=True, exist_ok=True)
        os.chmod(root, CACHE_MODE)
        for stale in root.glob(".fill-*"):  # a fill a crash interrupted
            shutil.rmtree(stale, ignore_errors=True)

    async def put(self, artifacts: Sequence[Artifact], work: Path, uid: int | None, gid: int | None) -> None:
        """Copy the artifacts' tree into ``work`` (owned by ``uid``/``gid``); FetchError on failure."""
        tree = await self._tree(artifacts)
        await asyncio.to_thread(_copy, tree, work, uid, gid)

    async def _tree(self, artifacts: Sequence[Artifact]) -> Path:
        key = key_of(artifacts)
        tree = self.root / key
        if tree.is_dir():
            return tree
        filling = self._filling.get(key)
        if filling is None:
            filling = asyncio.get_running_loop().create_future()
            self._filling[key] = filling
            try:
                filling.set_result(await self._fill(artifacts, tree))
                self._order.append(key)
                self._evict()
            except BaseException as exc:
                filling.set_exception(exc)
                filling.exception()  # retrieved: a fill no one else waited for is not "never retrieved"
                raise
            finally:
                del self._filling[key]
        return await asyncio.shield(filling)

    async def _fill(self, artifacts: Sequence[Artifact], tree: Path) -> Path:
        plan = fetch.plan_of([asdict(a) for a in artifacts], self.timeout, self.max_bytes)
        python, source, plan_json = fetch.wrapper_args(self.python, plan)
        work = self.root / f".fill-{tree.name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o700)
        # the fill's uid is claimed as a task's is, by its directory (relative to the sandboxes,
        # beside which the cache lives: <work_dir>/artifacts)
        who = self.uids.take(f"../{self.root.name}/{work.name}")
        if who is not None:
            os.chown(work, who.uid, who.gid)
        argv = [*(who.run_as if who else ()), python, "-I", "-S", "-c", source, plan_json]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=work,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
            )
            try:
                err = await asyncio.wait_for(_read_limited(proc), self.timeout + 10.0)
                code = await proc.wait()
            except TimeoutError:
                code, err = -1, f"{fetch.PREFIX}fetching took more than {self.timeout:g} s"
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                if proc.returncode is None:
                    await proc.wait()
            if code != 0:
                lines = [ln for ln in err.splitlines() if ln.startswith(fetch.PREFIX)]
                raise FetchError(
                    lines[-1].removeprefix(fetch.PREFIX) if lines else f"the fetcher exited {code}"
                )
            os.rename(work, tree)
            return tree
        finally:
            if who is not None:
                for pid in strays.of_uid(who.uid):  # nothing the fetch left outlives it
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                self.uids.release(who.uid)
            shutil.rmtree(work, ignore_errors=True)

    def _evict(self) -> None:
        while len(self._order) > self.keep:
            shutil.rmtree(self.root / self._order.pop(0), ignore_errors=True)


async def _read_limited(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    data = b""
    while chunk := await proc.stderr.read(4096):
        data = (data + chunk)[-STDERR_LIMIT:]
    return data.decode("utf-8", "replace")


def _copy(tree: Path, work: Path, uid: int | None, gid: int | None) -> None:
    """The tree into ``work``: links as links, every entry then owned by the task."""
    shutil.copytree(tree, work, symlinks=True, dirs_exist_ok=True)
    if uid is None or gid is None:
        return
    for top, dirs, files in os.walk(work):  # followlinks=False: a link to a directory is one entry
        for name in (*dirs, *files):
            os.lchown(os.path.join(top, name), uid, gid)
