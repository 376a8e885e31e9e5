"""Starting a task as a detached process: its own session and uid, a wrapper that records the exit code.

The wrapper (a few lines of ``/bin/sh``) waits for the backend's "go" on its stdin before it runs
anything: the backend says go only once the task's record (pid, start time) is on disk and the process
is in its cgroup. A scheduler killed between the fork and the record closes the pipe instead, and the
wrapper exits without starting the command, so no task can run that a restarted scheduler cannot
find. The wrapper then starts the task's log writer (``logwriter.py``, in the background, reading the
sandbox's two fifos) and runs the command with its stdout and stderr on those fifos; it writes
``exit_code`` into the sandbox when the command returns, so a scheduler that was away when the task
ended still learns how it ended, and then waits for the writer, so that everything the command
printed is in the log files before the task counts as ended (its exit is the wrapper's). The
fifos, not pipes: the wrapper's ``/bin/sh`` (dash) cannot name the descriptors above 9 that the
scheduler would pass, so the two ends meet by name, in the sandbox, which only the platform can
change. The writer ignores SIGTERM (a kill of the group, from its fork on): it ends when the
command's output ends. It runs 5 nicer than its task: its start (an interpreter's) then never
delays the command's own, and a chatty task waits for its writer rather than the other way round
(the fifo holds 64 KiB meanwhile). The wrapper traps SIGTERM so that a graceful kill of
the process group reaches the command while the wrapper survives to record the outcome; SIGKILL ends
both. A SIGTERM that arrives before the command started ends the wrapper without starting it; one that
arrives just after that check is made good by the backend, which sends SIGTERM to each new process of
the group during the grace. The wrapper is a session and process-group leader (``setsid``): the group
is what kill signals. It starts as the task's own uid and group, in the sandbox's ``work/``.
A task's artifacts are in its ``work/`` before the wrapper starts (``artifacts.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from subprocess import PIPE, Popen

from services.scheduler.portenv import port_env
from services.scheduler.ports import LaunchSpec

from .identity import TaskIdentity

WRAPPER = """\
trap 'stop=1' TERM INT HUP
IFS= read -r go || exit 125
exec </dev/null
[ "$go" = go ] || exit 125
if [ -n "$stop" ]; then echo 143 > ../exit_code; exit 143; fi
py=$1 src=$2 max=$3 keep=$4
shift 4
{ trap '' TERM INT HUP; exec nice -n 5 "$py" -I -S -c "$src" "$max" "$keep" ../logs ../exit_code; } \\
  <../stdout.fifo 3<../stderr.fifo >/dev/null 2>&1 &
w=$!
"$@" >../stdout.fifo 2>../stderr.fifo
c=$?
echo "$c" > ../exit_code
while kill -0 "$w" 2>/dev/null; do wait "$w"; done
exit "$c"
"""


def task_env(spec: LaunchSpec, ports: Mapping[str, int], hostname: str, sandbox: Path) -> dict[str, str]:
    """The group's env plus Marathon's port variables and Bay's own (host, task id, sandbox)."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update(spec.env)
    env.update(port_env(ports))
    env.update(
        HOST=hostname,
        BAY_TASK_ID=spec.task_id,
        BAY_GROUP=spec.group,
        BAY_SANDBOX=str(sandbox),
        HOME=env.get("HOME", str(sandbox / "work")),
    )
    return env


def command_argv(spec: LaunchSpec) -> list[str]:
    """``cmd`` runs under ``/bin/sh -c`` (extra args become $1..); without ``cmd``, args run as is."""
    if spec.cmd:
        return ["/bin/sh", "-c", spec.cmd, spec.task_id, *spec.args]
    return list(spec.args)


def spawn(
    argv: list[str],
    env: Mapping[str, str],
    sandbox: Path,
    who: TaskIdentity | None,
    writer: list[str],
) -> Popen[bytes]:
    """Start the wrapper detached, waiting for :func:`go`. ``writer`` is the log writer's
    interpreter, source, size limit and rotated files kept (:func:`logwriter.writer_args`); the
    wrapper's own stdout and stderr (the shell's complaints, if any) go to ``wrapper.log``.
    (``subprocess`` without ``user=`` starts it by ``vfork``, as ``posix_spawn`` would, and can
    also change directory; the exec resets the handlers of the signals the scheduler catches.)"""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW
    out = os.open(sandbox / "wrapper.log", flags)
    try:
        err = os.dup(out)
    except OSError:
        os.close(out)
        raise
    wrapper = ["/bin/sh", "-c", WRAPPER, "bay-task", *writer, *argv]
    try:
        return Popen(
            [*who.run_as, *wrapper] if who is not None else wrapper,
            stdin=PIPE,
            stdout=out,
            stderr=err,
            cwd=sandbox / "work",
            env=dict(env),
            start_new_session=True,
            restore_signals=True,
            umask=0o077,
        )
    finally:
        os.close(out)
        os.close(err)


def go(proc: Popen[bytes]) -> None:
    """Let the wrapper run the command (its record is stored)."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it was killed meanwhile: its exit is collected
        os.write(proc.stdin.fileno(), b"go\n")
    proc.stdin.close()
