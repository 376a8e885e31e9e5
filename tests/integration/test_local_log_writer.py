"""The task's own log writer, with the local backend and real processes: what the command printed
before it ended is in the log when the task counts as ended (also when something it left behind
keeps its stdout open, and on a graceful kill); a task that kills its writer loses only its own
logs (its end is still recorded, another task's logs go on); and a follow reads through several
rotations that happened between two of its looks, in order, each byte once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from services.scheduler.backends.local import LocalBackend
from services.scheduler.backends.local.logs import read_log
from services.scheduler.backends.local.logwriter import RotatingFile
from services.scheduler.ports import TaskState
from tests.contract.test_backend_contract import (
    DEADLINE,
    StatusRecorder,
    kill_leftovers,
    launch_spec,
    local_config,
)
from tests.poll import poll_until


class Local:
    def __init__(self, work_dir: Path) -> None:
        self.sink = StatusRecorder()
        config = local_config(work_dir, port_begin=25250, port_end=25299, log_max_bytes=4096, log_keep=2)
        self.backend = LocalBackend(config)

    async def text(self, task_id: str, stream: str = "stdout") -> str:
        chunks = [c async for c in self.backend.logs(task_id, stream, tail=-1)]
        return b"".join(chunks).decode()


@pytest_asyncio.fixture
async def local(tmp_path: Path) -> AsyncIterator[Local]:
    harness = Local(tmp_path)
    await harness.backend.start(harness.sink)
    try:
        yield harness
    finally:
        await harness.backend.stop()
        kill_leftovers(tmp_path)


async def test_a_leftover_holding_stdout_does_not_keep_the_task_alive_and_its_last_words_are_kept(
    local: Local,
) -> None:
    # the background sleep keeps the stdout fifo open: the writer ends on the exit code instead
    await local.backend.launch([launch_spec("held.one", "sleep 600 & echo last words; exit 4")])
    ended = await local.sink.wait_for("held.one", TaskState.FAILED)
    assert ended.exit_code == 4
    assert await local.text("held.one") == "last words\n"


async def test_a_graceful_kill_keeps_what_the_command_said_while_stopping(local: Local) -> None:
    cmd = "trap 'echo stopping; exit 0' TERM; echo up; while :; do sleep 0.05; done"
    await local.backend.launch([launch_spec("kind.one", cmd)])
    await local.sink.wait_for("kind.one", TaskState.RUNNING)

    async def up() -> bool:
        return await local.text("kind.one") == "up\n"

    await poll_until(up, "the task's first line", DEADLINE)
    await local.backend.kill("kind.one", grace_seconds=5.0)
    await local.sink.wait_for("kind.one", TaskState.KILLED)
    assert await local.text("kind.one") == "up\nstopping\n"  # the writer outlived the SIGTERM


async def test_a_task_that_kills_its_writer_loses_only_its_own_logs(local: Local) -> None:
    # the writer is the task's only python process; once it is gone, the next echo gets SIGPIPE
    cmd = (
        "echo before; pkill -KILL -u $(id -u) -x python3 || pkill -KILL -u $(id -u) python; "
        "sleep 0.2; echo after; exec sleep 600"
    )
    await local.backend.launch(
        [launch_spec("rogue.one", cmd), launch_spec("calm.one", "echo calm; exec sleep 600")]
    )
    ended = await local.sink.wait_for("rogue.one", TaskState.FAILED)  # its own write failed it
    assert ended.state == TaskState.FAILED
    assert "after" not in await local.text("rogue.one")
    assert await local.text("calm.one") == "calm\n"  # another task's writer is untouched
    running = local.sink.states("calm.one")
    assert running[-1] == TaskState.RUNNING


async def test_a_follow_reads_through_rotations_between_two_looks_in_order(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    writer = RotatingFile(str(logs / "stdout"), max_bytes=100, keep=3)
    done = asyncio.Event()
    lines = [f"line {n:04}\n".encode() for n in range(400)]  # 10 bytes each: 10 a file

    async def follow() -> bytes:
        chunks = [c async for c in read_log(logs / "stdout", -1, True, done.is_set)]
        return b"".join(chunks)

    reader = asyncio.create_task(follow())
    for start in range(0, 400, 25):  # 2.5 files a burst: a rotation or two between the reader's looks
        writer.write(b"".join(lines[start : start + 25]))
        await asyncio.sleep(0.15)  # the writer's pace, not a wait for the reader
    done.set()
    assert (await asyncio.wait_for(reader, DEADLINE)) == b"".join(lines)
    sizes = {p.name: p.stat().st_size for p in logs.iterdir()}
    assert sorted(sizes) == ["stdout", "stdout.1", "stdout.2", "stdout.3"]
    assert max(sizes.values()) <= 100


async def test_a_task_cannot_make_the_scheduler_read_anything_but_its_output(
    local: Local, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root's secret\n")
    secret.chmod(0o600)
    # the task owns logs/: once its writer has its files open (its first line is there), it swaps
    # them for a link to root's file and a fifo (reading either would leak the file or block the
    # scheduler's reader); the writer goes on writing to the files it has open
    wait = "echo up; until grep -q up ../logs/stdout; do sleep 0.02; done"
    swap = f"rm stdout stderr && ln -s {secret} stdout && mkfifo stderr && echo > made"
    cmd = f"{wait}; cd -P ../logs && {swap}; echo more; exec sleep 600"  # -P: no getcwd() needed
    await local.backend.launch([launch_spec("sly.one", cmd)])
    await local.sink.wait_for("sly.one", TaskState.RUNNING)
    made = local.backend.sandbox_of("sly.one") / "logs" / "made"
    await poll_until(made.exists, "the task's swap", DEADLINE)
    assert await asyncio.wait_for(local.text("sly.one"), 5) == ""
    assert await asyncio.wait_for(local.text("sly.one", "stderr"), 5) == ""


async def test_a_writer_started_after_the_swap_replaces_what_it_finds_with_plain_files(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "stdout").symlink_to(tmp_path / "elsewhere")
    os.mkfifo(logs / "stdout.1")
    writer = RotatingFile(str(logs / "stdout"), max_bytes=10, keep=1)
    writer.write(b"0123456789abc\n")  # a line longer than a file: cut where the file is full
    assert not (tmp_path / "elsewhere").exists()
    assert (logs / "stdout.1").read_bytes() == b"0123456789"
    assert (logs / "stdout").read_bytes() == b"abc\n"


async def test_a_rotation_the_task_made_impossible_still_keeps_the_cap(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "stdout.1").mkdir()  # where the full file would go
    (logs / "stdout.1" / "x").touch()
    writer = RotatingFile(str(logs / "stdout"), max_bytes=10, keep=1)
    writer.write(b"aaaa\nbbbb\ncccc\n")
    assert (logs / "stdout").read_bytes() == b"cccc\n"  # the cap holds; what could not move went
