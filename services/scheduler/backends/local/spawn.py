"""Starting a task as a detached process: its own session, a wrapper that records the exit code.

The wrapper (a few lines of ``/bin/sh``) moves itself into the task's cgroup, runs the command and
writes ``exit_code`` into the sandbox, so a scheduler that was away when the task ended still learns
how it ended. It traps SIGTERM so that a graceful kill of the process group reaches the command while the
wrapper survives to record the outcome; SIGKILL ends both. A SIGTERM that arrives before the command
started ends the wrapper without starting it; one that arrives just after that check is made good by
the backend, which sends SIGTERM to each new process of the group during the grace. ``posix_spawn``
with ``setsid`` makes the wrapper a session and process-group leader: the group is what kill signals.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

from services.scheduler.portenv import port_env
from services.scheduler.ports import LaunchSpec

WRAPPER = """\
trap 'stop=1' TERM INT HUP
cd "$1" || exit 127
if [ -n "$2" ]; then echo $$ > "$2" || exit 126; fi
shift 2
if [ -n "$stop" ]; then echo 143 > exit_code; exit 143; fi
"$@"
c=$?
echo "$c" > exit_code
exit "$c"
"""

# Python ignores SIGPIPE (and may block signals in threads); a task starts with the defaults.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
        HOME=env.get("HOME", str(sandbox)),
    )
    return env


def command_argv(spec: LaunchSpec) -> list[str]:
    """``cmd`` runs under ``/bin/sh -c`` (extra args become $1..); without ``cmd``, args run as is."""
    if spec.cmd:
        return ["/bin/sh", "-c", spec.cmd, spec.task_id, *spec.args]
    return list(spec.args)


def spawn(argv: list[str], env: Mapping[str, str], sandbox: Path, cgroup_procs: Path | None) -> int:
    """Start the wrapper detached; its stdout/stderr go to the sandbox files. Returns its pid."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(sandbox / "stdout"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(sandbox / "stderr"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
    ]
    wrapper_argv = ["/bin/sh", "-c", WRAPPER, "bay-task", str(sandbox), str(cgroup_procs or ""), *argv]
    return os.posix_spawn(
        "/bin/sh",
        wrapper_argv,
        dict(env),
        file_actions=actions,
        setsid=True,
        setsigdef=_DEFAULT_SIGNALS,
        setsigmask=(),
    )
