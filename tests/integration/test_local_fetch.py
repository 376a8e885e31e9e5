"""Artifacts on the local backend: fetched into the task's work directory by the task itself (as its
own uid), checked against their sha256, unpacked, made executable; then the command runs there.
A wrong digest or an archive member that would escape fails the task, naming why, and the command
never runs. Also the fetcher's own refusals (links out, absolute paths, ``..``, the size limit)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.scheduler.backends.local import LocalBackend
from services.scheduler.backends.local import fetch as fetcher
from services.scheduler.backends.local.sandbox import spec_from_json, spec_to_json
from services.scheduler.ports import Artifact, TaskState
from tests.contract.test_backend_contract import StatusRecorder, kill_leftovers, launch_spec, local_config
from tests.integration.scheduler_harness import task_readable_dir


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tgz(path: Path, files: dict[str, bytes], *, modes: dict[str, int] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), (modes or {}).get(name, 0o644)
            tar.addfile(info, io.BytesIO(data))
    path.chmod(0o644)
    return path


def add_link(path: Path, name: str, target: str, *, hard: bool = False) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
        tar.addfile(info)
    return path


@pytest.fixture
def shelf() -> Iterator[Path]:
    """Where artifacts wait for their file:// fetch: a directory the tasks' uids can read."""
    path = task_readable_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


GETS: list[str] = []  # the paths the shelf's server was asked for


@pytest.fixture
def served(shelf: Path) -> Iterator[str]:
    """The shelf over HTTP (a thread: the test's loop stays free)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(shelf), **kwargs)

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            GETS.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Local:
    def __init__(self, work_dir: Path) -> None:
        self.sink = StatusRecorder()
        self.backend = LocalBackend(local_config(work_dir, cgroups=False))

    def work(self, task_id: str) -> Path:
        return self.backend.sandbox_of(task_id) / "work"


@pytest_asyncio.fixture
async def local(tmp_path: Path) -> AsyncIterator[Local]:
    harness = Local(tmp_path)
    await harness.backend.start(harness.sink)
    try:
        yield harness
    finally:
        await harness.backend.stop()
        kill_leftovers(tmp_path)


async def test_a_tarball_is_fetched_unpacked_and_its_command_runs_in_the_sandbox(
    local: Local, shelf: Path
) -> None:
    tgz = make_tgz(
        shelf / "app-1.tar.gz",
        {"bin/app": b'#!/bin/sh\necho "app says $(cat share/greeting)"\n', "share/greeting": b"hello\n"},
        modes={"bin/app": 0o755},
    )
    art = Artifact(f"file://{tgz}", sha256(tgz), extract=True)
    spec = launch_spec("app.1", "./bin/app > said && id -u > uid", fetch=(art,))
    await local.backend.launch([spec])
    done = await local.sink.wait_for("app.1", TaskState.FINISHED)
    assert done.exit_code == 0
    work = local.work("app.1")
    assert (work / "said").read_text() == "app says hello\n"
    assert (work / "app-1.tar.gz").exists()  # the archive stays, as Mesos leaves it
    uid = int((work / "uid").read_text())
    assert (work / "share" / "greeting").stat().st_uid == uid  # unpacked as the task itself
    if os.geteuid() == 0 and shutil.which("setpriv"):
        assert uid != 0  # ... which is not root


async def test_a_single_binary_over_http_is_made_executable(local: Local, shelf: Path, served: str) -> None:
    tool = shelf / "tool"
    tool.write_bytes(b"#!/bin/sh\necho tool ran with $1\n")
    tool.chmod(0o644)
    art = Artifact(f"{served}/tool", sha256(tool), executable=True)
    await local.backend.launch([launch_spec("tool.1", "./tool x > out", fetch=(art,))])
    await local.sink.wait_for("tool.1", TaskState.FINISHED)
    assert (local.work("tool.1") / "out").read_text() == "tool ran with x\n"


async def test_a_build_is_fetched_once_for_all_its_tasks_each_getting_its_own_copy(
    local: Local, shelf: Path, served: str
) -> None:
    tgz = make_tgz(shelf / "app-3.tar.gz", {"share/greeting": b"hello\n"})
    art = Artifact(f"{served}/app-3.tar.gz", sha256(tgz), extract=True)
    GETS.clear()
    specs = [
        launch_spec(f"many.{n}", "cat share/greeting > said && id -u > uid", fetch=(art,)) for n in range(4)
    ]
    await local.backend.launch(specs)
    uids = set()
    for n in range(4):
        await local.sink.wait_for(f"many.{n}", TaskState.FINISHED)
        work = local.work(f"many.{n}")
        assert (work / "said").read_text() == "hello\n"
        uid = int((work / "uid").read_text())
        assert (work / "share" / "greeting").stat().st_uid == uid  # its own copy, its own
        uids.add(uid)
    assert GETS == ["/app-3.tar.gz"]  # one download for the four
    if os.geteuid() == 0 and shutil.which("setpriv"):
        assert len(uids) == 4
        cache = local.backend.config.work_dir / "artifacts"
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and cache.stat().st_uid == 0  # root's alone
    # a later task of the same build takes the cached copy: no download
    await local.backend.launch([launch_spec("many.later", "cat share/greeting > said", fetch=(art,))])
    await local.sink.wait_for("many.later", TaskState.FINISHED)
    assert (local.work("many.later") / "said").read_text() == "hello\n" and len(GETS) == 1


async def test_a_wrong_digest_fails_the_task_naming_both_digests_and_the_uri(
    local: Local, shelf: Path, served: str
) -> None:
    tgz = make_tgz(shelf / "app-2.tar.gz", {"run.sh": b"echo hi\n"})
    wrong = "0" * 64
    art = Artifact(f"{served}/app-2.tar.gz", wrong, extract=True)
    await local.backend.launch([launch_spec("bad.1", "touch ran", fetch=(art,))])
    failed = await local.sink.wait_for("bad.1", TaskState.FAILED)
    assert f"sha256 mismatch for {served}/app-2.tar.gz" in failed.message
    assert f"expected {wrong}, got {sha256(tgz)}" in failed.message
    assert failed.reason == "REASON_CONTAINER_LAUNCH_FAILED"
    assert not (local.work("bad.1") / "ran").exists()  # the command never ran
    assert not (local.work("bad.1") / "app-2.tar.gz").exists()  # nor is the wrong file kept


async def test_an_archive_member_climbing_out_is_refused(local: Local, shelf: Path) -> None:
    tgz = make_tgz(shelf / "evil.tar.gz", {"ok.txt": b"fine\n", "../../escaped": b"gotcha\n"})
    art = Artifact(f"file://{tgz}", sha256(tgz), extract=True)
    await local.backend.launch([launch_spec("evil.1", "touch ran", fetch=(art,))])
    failed = await local.sink.wait_for("evil.1", TaskState.FAILED)
    assert "refused to unpack" in failed.message and "'../../escaped'" in failed.message
    sandbox = local.backend.sandbox_of("evil.1")
    assert not (sandbox / "escaped").exists() and not (sandbox.parent / "escaped").exists()
    assert not (sandbox / "work" / "ran").exists()


# ---- the fetcher's own rules, in this process ----


def fetch_into(tmp_path: Path, archive: Path, **kw: object) -> Path:
    into = tmp_path / "into"
    into.mkdir(exist_ok=True)
    artifact = {"uri": f"file://{archive}", "sha256": sha256(archive), "extract": True, **kw}
    return fetcher.fetch(artifact, into, timeout=10, max_bytes=1 << 20)


@pytest.mark.parametrize(
    ("name", "target", "hard"),
    [("up", "../../etc", False), ("abs", "/etc/passwd", False), ("deep/up", "../../x", False),
     ("hard", "../outside", True), ("hardabs", "/etc/shadow", True)],
)  # fmt: skip
def test_links_pointing_outside_are_refused(tmp_path: Path, name: str, target: str, hard: bool) -> None:
    tar = add_link(tmp_path / "links.tar", name, target, hard=hard)
    with pytest.raises(fetcher.FetchFailed, match="points outside"):
        fetch_into(tmp_path, tar)
    assert not os.path.lexists(tmp_path / "into" / name)


def test_links_within_the_directory_are_kept(tmp_path: Path) -> None:
    tar = tmp_path / "in.tar"
    with tarfile.open(tar, "w") as t:
        data = tarfile.TarInfo("lib/real.txt")
        data.size = 3
        t.addfile(data, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("bin/alias")
        link.type, link.linkname = tarfile.SYMTYPE, "../lib/real.txt"
        t.addfile(link)
    fetch_into(tmp_path, tar)
    assert (tmp_path / "into" / "bin" / "alias").read_text() == "abc"


@pytest.mark.parametrize("name", ["/abs/file", "a/../../b", "../b"])
def test_absolute_and_parent_members_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(fetcher.FetchFailed, match="would land outside"):
        fetch_into(tmp_path, make_tgz(tmp_path / "x.tgz", {name: b"x"}))
    z = tmp_path / "x.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(fetcher.FetchFailed, match="would land outside"):
        fetch_into(tmp_path, z)


@pytest.mark.parametrize("mode", ["w:bz2", "w:xz", "w"])
def test_every_tar_compression_and_zip_unpack(tmp_path: Path, mode: str) -> None:
    tar = tmp_path / "a.tar"
    with tarfile.open(tar, mode) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"ok"))
    fetch_into(tmp_path, tar)
    assert (tmp_path / "into" / "a.txt").read_text() == "ok"
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as zf:
        exe = zipfile.ZipInfo("bin/run")
        exe.external_attr = 0o755 << 16
        zf.writestr(exe, b"#!/bin/sh\n")
    fetch_into(tmp_path, z)
    assert os.access(tmp_path / "into" / "bin" / "run", os.X_OK)


def test_more_than_the_size_limit_is_refused_and_not_unpacked(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 5000)
    into = tmp_path / "into"
    into.mkdir()
    artifact = {"uri": f"file://{big}", "sha256": sha256(big)}
    with pytest.raises(fetcher.FetchFailed, match="more than the limit of 4096 bytes"):
        fetcher.fetch(artifact, into, timeout=10, max_bytes=4096)
    assert list(into.iterdir()) == []


def test_not_an_archive_fails_clearly(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("just text\n")
    with pytest.raises(fetcher.FetchFailed, match="not a tar or zip archive"):
        fetch_into(tmp_path, plain)


def test_a_broken_zip_fails_clearly(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 60)
    with pytest.raises(fetcher.FetchFailed, match="a broken zip archive"):
        fetch_into(tmp_path, broken)


def test_the_wrappers_fetch_of_a_local_tarball_imports_no_http_client(tmp_path: Path) -> None:
    """The wrapper runs the fetch before every task's command: a file:// tarball needs neither
    urllib.request nor zipfile, whose imports cost more than the interpreter's start."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "build.txt").write_text("b-1\n")
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "build.txt", arcname="build.txt")
    plan = fetcher.plan_of(
        [{"uri": f"file://{archive}", "sha256": sha256(archive), "extract": True}], 10, 1 << 20
    )
    work = tmp_path / "work"
    work.mkdir()
    probe = (
        fetcher._source().replace('if __name__ == "__main__":', "if False:")
        + "\nassert main(sys.argv[1:]) == 0\n"
        + "print(sorted(m for m in ('urllib.request', 'zipfile', 'http.client') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, json.dumps(plan)], cwd=work, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert (work / "build.txt").read_text() == "b-1\n"


def test_a_task_record_keeps_its_artifacts_for_a_restarted_backend() -> None:
    art = Artifact("https://artifacts.local/a.tgz", "a" * 64, extract=True, executable=False)
    spec = launch_spec("app.9", "./run", fetch=(art,))
    assert spec_from_json(json.loads(json.dumps(spec_to_json(spec)))) == spec


def test_http_answers_that_are_too_large_or_missing_fail_clearly(
    tmp_path: Path, shelf: Path, served: str
) -> None:
    (shelf / "big.bin").write_bytes(b"x" * 5000)
    into = tmp_path / "into"
    into.mkdir()
    big = {"uri": f"{served}/big.bin", "sha256": "0" * 64}
    with pytest.raises(fetcher.FetchFailed, match="is 5000 bytes, more than the limit of 4096"):
        fetcher.fetch(big, into, timeout=10, max_bytes=4096)
    gone = {"uri": f"{served}/gone.tgz", "sha256": "0" * 64}
    with pytest.raises(fetcher.FetchFailed, match=f"cannot fetch {served}/gone.tgz: HTTP 404"):
        fetcher.fetch(gone, into, timeout=10, max_bytes=4096)
    assert list(into.iterdir()) == []
