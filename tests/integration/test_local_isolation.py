"""The local backend keeps tasks apart from the platform and from each other (real processes, real
uids: the suite runs as root, so the backend really switches), and no process outlives its task."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.scheduler.adapters.healthcheck import CheckTarget, check_once
from services.scheduler.backends.local import LocalBackend, procfs
from services.scheduler.backends.local.identity import not_root_warning, resolve
from services.scheduler.ports import HealthCheckSpec, TaskState
from tests.contract.test_backend_contract import (
    DEADLINE,
    StatusRecorder,
    kill_leftovers,
    launch_spec,
    local_config,
)
from tests.integration.scheduler_harness import task_readable_dir
from tests.integration.test_local_backend import process_exit
from tests.poll import poll_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")

# Each probe prints "<name> ok" when the task could do it, "<name> denied" when not.
PROBE = "if {cmd} >/dev/null 2>&1; then echo '{name} ok'; else echo '{name} denied'; fi"


@pytest_asyncio.fixture
async def root() -> AsyncIterator[Path]:
    """A data directory open to the world above it (as ``.bay`` in a checkout is), so that only
    Bay's own modes keep tasks out (pytest's tmp_path sits in a directory only root can enter)."""
    path = task_readable_dir()
    try:
        yield path
    finally:
        kill_leftovers(path)
        shutil.rmtree(path, ignore_errors=True)


async def started(work_dir: Path) -> tuple[LocalBackend, StatusRecorder]:
    backend, sink = LocalBackend(local_config(work_dir)), StatusRecorder()
    await backend.start(sink)
    return backend, sink


async def test_a_task_reads_neither_the_platform_secrets_nor_another_tasks_sandbox(root: Path) -> None:
    token = root / "admin.token"  # as `bay up` keeps it, beside the NATS store
    token.write_text("secret-admin-token\n")
    token.chmod(0o600)
    (root / "nats").mkdir(mode=0o700)
    (root / "nats" / "stream.dat").write_text("the store")
    backend, sink = await started(root / "local" / "local")
    try:
        await backend.launch([launch_spec("a.one", "echo mine > secret; echo started; exec sleep 60")])
        await sink.wait_for("a.one", TaskState.RUNNING)
        a_sandbox, a_pid = backend.sandbox_of("a.one"), backend.pid_of("a.one")
        probes = {
            "token": f"cat {token}",
            "store": f"ls {root / 'nats'}",
            "other-work": f"cat {a_sandbox / 'work' / 'secret'}",
            "other-log": f"cat {a_sandbox / 'logs' / 'stdout'}",
            "other-record": f"cat {a_sandbox / 'task.json'}",
            "other-proc": f"ls /proc/{a_pid}/cwd/",
            "sandboxes": f"ls {a_sandbox.parent}",
            "signal": f"kill -0 {a_pid}",
            "own-log": "cat ../logs/stdout",
            "own-work": "touch here",
        }
        script = "; ".join(PROBE.format(cmd=cmd, name=name) for name, cmd in probes.items())
        await backend.launch([launch_spec("b.two", f"{script}; echo uid $(id -u) $(id -g)")])
        await sink.wait_for("b.two", TaskState.FINISHED)
        out = (backend.sandbox_of("b.two") / "logs" / "stdout").read_text().splitlines()
        results = dict(line.split(" ", 1) for line in out if not line.startswith("uid"))
        assert results == {
            **{name: "denied" for name in probes if not name.startswith("own")},
            "own-log": "ok",
            "own-work": "ok",
        }, out
        uid_line = next(line for line in out if line.startswith("uid")).split()
        b_uid = int(uid_line[1])
        a_uid = json.loads((a_sandbox / "task.json").read_text())["uid"]
        assert b_uid != 0 and a_uid != 0 and b_uid != a_uid  # a uid of its own each
        assert int(uid_line[2]) == os.stat(backend.sandbox_of("b.two")).st_gid == b_uid  # its own group
        assert (a_sandbox / "work" / "secret").read_text() == "mine\n"  # the platform reads it all
    finally:
        await backend.stop()


def _task_group() -> str:
    """The groups of a task: its own, then the task account's (make setup created it) if any."""
    try:
        return str(pwd.getpwnam("bay-task").pw_gid)
    except KeyError:
        return ""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_sandboxes_and_their_files_are_not_world_readable(root: Path) -> None:
    backend, sink = await started(root / "local" / "local")
    try:
        await backend.launch([launch_spec("m.one", "echo hi; touch made; exec sleep 60")])
        await sink.wait_for("m.one", TaskState.RUNNING)
        sandbox = backend.sandbox_of("m.one")
        uid = json.loads((sandbox / "task.json").read_text())["uid"]
        assert mode(sandbox.parent) == 0o711 and mode(sandbox.parent.parent) == 0o711
        assert mode(sandbox) == 0o750 and sandbox.stat().st_uid == 0
        for name in ("wrapper.log", "task.json"):
            assert mode(sandbox / name) & 0o007 == 0 and (sandbox / name).stat().st_uid == 0, name
        assert mode(sandbox / "work") == 0o700 and (sandbox / "work").stat().st_uid == uid
        # its log writer rotates its output in logs/, which is the task's own, and nobody else's
        for name in ("logs", "logs/stdout", "logs/stderr", "stdout.fifo", "stderr.fifo"):
            assert mode(sandbox / name) & 0o007 == 0 and (sandbox / name).stat().st_uid == uid, name
        made = sandbox / "work" / "made"
        await poll_until(made.exists, "the task's file", DEADLINE)
        assert mode(made) & 0o077 == 0  # the task's umask
    finally:
        await backend.stop()


async def test_a_command_check_runs_as_its_task_in_the_task_sandbox(root: Path) -> None:
    backend, sink = await started(root / "local" / "local")
    try:
        await backend.launch([launch_spec("c.one", "echo ok > flag; exec sleep 60")])
        await sink.wait_for("c.one", TaskState.RUNNING)
        sandbox = backend.sandbox_of("c.one")
        uid = json.loads((sandbox / "task.json").read_text())["uid"]
        where = backend.command_context("c.one")
        assert where is not None and where.cwd == str(sandbox / "work")
        check = HealthCheckSpec(
            protocol="command",
            command=f'test "$(id -u)" = {uid} && test "$(pwd)" = {sandbox / "work"} && test ! -r {root}/x'
            f' && test "$(id -G)" = "{" ".join(filter(None, [str(uid), _task_group()]))}"',
            timeout_seconds=5,
        )
        (root / "x").write_text("platform file")
        (root / "x").chmod(0o600)
        target = CheckTarget("c.one", check, "127.0.0.1", {}, {}, cwd=where.cwd, run_as=where.run_as)
        assert await check_once(target) == (True, "exit 0")
        as_root = CheckTarget("c.one", check, "127.0.0.1", {}, {}, cwd=where.cwd)
        assert (await check_once(as_root))[0] is False  # the check really tells the two apart
    finally:
        await backend.stop()


def test_without_root_bay_says_that_tasks_run_with_its_own_rights(caplog: pytest.LogCaptureFixture) -> None:
    users = resolve("bay-task", (1_900_000, 1_999_999), euid=1000)
    assert not users.switch
    assert "not root" in caplog.text and "cannot switch users" in caplog.text
    assert "bay-task" in not_root_warning("bay-task")


def test_a_scheduler_started_as_another_user_warns_at_start_up(root: Path) -> None:
    """The real process, as an unprivileged user: it says, at start-up, that it cannot switch."""
    code = """
import asyncio, logging, sys
from pathlib import Path
from services.scheduler.backends.local import LocalBackend, LocalBackendConfig
logging.basicConfig(level=logging.WARNING)
backend = LocalBackend(LocalBackendConfig(work_dir=Path(sys.argv[1]), cgroups=False))
async def sink(_): pass
async def main():
    await backend.start(sink)
    await backend.stop()
asyncio.run(main())
"""
    work = root / "nobody"
    work.mkdir()
    os.chown(work, 65534, 65534)
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            _python(),
            "-c",
            code,
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": f"{repo}:{repo / 'gen'}:{_site(repo)}", "PATH": os.environ["PATH"]},
    )
    if "No module named" in run.stderr:
        pytest.skip(f"the unprivileged user cannot import Bay here: {run.stderr.strip()[-200:]}")
    assert run.returncode == 0, run.stderr
    assert "cannot switch users" in run.stderr and "not root" in run.stderr


def _python() -> str:
    from tests.tasks import TASK_PYTHON

    return TASK_PYTHON


def _site(repo: Path) -> str:
    found = sorted((repo / ".venv" / "lib").glob("python3*/site-packages"))
    return str(found[0]) if found else ""


async def test_a_restarted_backend_kills_every_process_no_live_task_accounts_for(root: Path) -> None:
    work = root / "local" / "local"
    backend, sink = await started(work)
    await backend.launch([launch_spec("s.keep", "exec sleep 60"), launch_spec("s.done", "exec sleep 60")])
    await sink.wait_for("s.keep", TaskState.RUNNING)
    await sink.wait_for("s.done", TaskState.RUNNING)
    done_uid = json.loads((backend.sandbox_of("s.done") / "task.json").read_text())["uid"]
    await backend.kill("s.done", grace_seconds=5.0)
    await sink.wait_for("s.done", TaskState.KILLED)
    keep_pid = backend.pid_of("s.keep")
    await backend.stop()

    ghost = work / "sandboxes" / "ghost.1"  # a launch that never got its record
    ghost.mkdir()
    planted, bystander = _plant(ghost, done_uid)
    again, sink = await started(work)
    try:
        for proc in planted:
            assert await asyncio.wait_for(asyncio.to_thread(proc.wait), DEADLINE) == -signal.SIGKILL
        assert bystander.poll() is None
        running = await sink.wait_for("s.keep", TaskState.RUNNING)
        assert running.message.startswith("re-adopted") and again.pid_of("s.keep") == keep_pid
    finally:
        bystander.kill()
        bystander.wait()
        await again.stop()


async def test_a_task_runs_below_the_platforms_priority_and_cannot_raise_it(root: Path) -> None:
    """Tasks that burn every core leave the scheduler its share: niceness 10 for the task and all
    it starts (and for its session's autogroup, where the kernel has them), and no way back to 0."""
    script = (
        "echo nice $(nice); echo group $(cat /proc/self/autogroup 2>/dev/null || echo none); "
        "if renice -n 0 -p $$ >/dev/null 2>&1; then echo raise ok; else echo raise denied; fi; "
        "sh -c 'echo child $(nice)'"
    )
    backend, sink = await started(root / "local" / "local")
    try:
        await backend.launch([launch_spec("n.one", script)])
        await sink.wait_for("n.one", TaskState.FINISHED)
        out = dict(
            line.split(" ", 1)
            for line in (backend.sandbox_of("n.one") / "logs" / "stdout").read_text().splitlines()
        )
    finally:
        await backend.stop()
    assert (out["nice"], out["raise"], out["child"]) == ("10", "denied", "10"), out
    if out["group"] != "none":  # a kernel with autogroups
        assert out["group"].endswith("nice 10"), out  # its own session's group, at the tasks' niceness
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the platform's own priority is untouched


async def test_a_task_ends_with_every_process_of_its_uid(root: Path) -> None:
    backend, sink = await started(root / "local" / "local")
    try:
        # the daemon leaves the task's process group and session; its uid it cannot leave
        await backend.launch([launch_spec("d.one", "setsid sleep 60 & exec sleep 60")])
        await sink.wait_for("d.one", TaskState.RUNNING)
        uid = json.loads((backend.sandbox_of("d.one") / "task.json").read_text())["uid"]
        # wrapper, the task's sleep, the daemon
        await poll_until(lambda: len(_pids_of(uid)) >= 3, "the daemon started", DEADLINE)
        others = [p for p in _pids_of(uid) if os.getpgid(p) != backend.pid_of("d.one")]
        assert others, "the daemon left the task's process group"
        await backend.kill("d.one", grace_seconds=5.0)
        await sink.wait_for("d.one", TaskState.KILLED)
        for pid in others:
            await process_exit(pid)
        assert _pids_of(uid) == []
    finally:
        await backend.stop()


def _plant(ghost: Path, ended_uid: int) -> tuple[list[subprocess.Popen[bytes]], subprocess.Popen[bytes]]:
    """Processes a crash could have left: in a sandbox that has no record (by directory, by
    environment), and a daemon of an ended task outside its sandbox and environment; and one that
    is not Bay's at all."""
    ended = ["setpriv", f"--reuid={ended_uid}", f"--regid={ended_uid}", "--clear-groups", "sleep", "60"]
    planted = [
        subprocess.Popen(["sleep", "60"], cwd=ghost, start_new_session=True),
        subprocess.Popen(["sleep", "60"], env={"BAY_SANDBOX": str(ghost)}, start_new_session=True),
        subprocess.Popen(ended, cwd="/", env={}, start_new_session=True),
    ]
    return planted, subprocess.Popen(["sleep", "60"], start_new_session=True)


def _pids_of(uid: int) -> list[int]:
    """Live (not zombie) processes of ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                alive = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
                if entry.stat().st_uid == uid and alive:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_two_backends_on_one_host_do_not_kill_each_others_tasks(root: Path) -> None:
    """Two local backends (two clusters, two stacks) hand out uids from the start of one range. A task
    that ends takes every process of its uid with it: without host-wide claims, the second backend's
    first task had the first one's uid, and its end SIGKILLed the first backend's task."""
    claims = {"uid_claims_dir": root / "claims"}
    a = LocalBackend(local_config(root / "a", **claims))
    b = LocalBackend(local_config(root / "b", port_begin=39150, port_end=39199, **claims))
    a_sink, b_sink = StatusRecorder(), StatusRecorder()
    await a.start(a_sink)
    await b.start(b_sink)
    try:
        await a.launch([launch_spec("a.keep", "echo started; exec sleep 60")])
        await a_sink.wait_for("a.keep", TaskState.RUNNING)
        keep = a.pid_of("a.keep")
        a_uid = json.loads((a.sandbox_of("a.keep") / "task.json").read_text())["uid"]
        for n in range(3):
            await b.launch([launch_spec(f"b.brief{n}", "exit 0")])
            await b_sink.wait_for(f"b.brief{n}", TaskState.FINISHED)
        b_uids = {
            json.loads((b.sandbox_of(f"b.brief{n}") / "task.json").read_text())["uid"] for n in range(3)
        }
        assert procfs.is_running(keep)  # a's task runs on
        assert a_uid not in b_uids
        assert (
            TaskState.RUNNING in a_sink.states("a.keep") and a_sink.states("a.keep")[-1] == TaskState.RUNNING
        )
    finally:
        await a.kill("a.keep")
        await a_sink.wait_for("a.keep", TaskState.KILLED)
        await a.stop()
        await b.stop()
