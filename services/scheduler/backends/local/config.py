"""Settings of one local cluster: where sandboxes live and what this machine offers to tasks."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .identity import DEFAULT_UIDS, DEFAULT_USER
from .uidclaims import DEFAULT_DIR as DEFAULT_CLAIMS_DIR

#: the niceness local tasks run at: the platform's processes (nice 0) weigh about 9x one task
DEFAULT_TASK_NICE = 10


@dataclass(frozen=True)
class LocalBackendConfig:
    """Built by the scheduler service from its BAY_* settings; the backend never reads the environment.

    ``work_dir`` is typically ``<data_dir>/local/<cluster>``; sandboxes go to ``work_dir/sandboxes``.
    ``cgroup_parent`` names a delegated cgroup v2 directory; None means "the scheduler's own cgroup".
    """

    work_dir: Path
    hostname: str = field(default_factory=socket.gethostname)
    labels: Mapping[str, str] = field(default_factory=dict)
    cpus: float = 4.0
    mem: float = 4096.0  # MiB
    disk: float = 10240.0  # MiB
    port_begin: int = 31000
    port_end: int = 31999  # inclusive
    cgroups: bool = True
    cgroup_parent: Path | None = None
    # tasks (and all they start) run at this niceness; they cannot lower it (no-new-privs, no
    # CAP_SYS_NICE), so a task that burns every core leaves the platform's processes their share
    task_nice: int = DEFAULT_TASK_NICE  # BAY_LOCAL_TASK_NICE; 0: the scheduler's own priority
    address: str = "127.0.0.1"  # where clients reach this host's tasks (BAY_LOCAL_ADDRESS)
    poll_interval_seconds: float = 0.15
    task_user: str = DEFAULT_USER  # tasks run in its group, each with a uid of its own (BAY_TASK_USER)
    task_uids: tuple[int, int] = DEFAULT_UIDS  # first and last task uid, inclusive (BAY_TASK_UIDS)
    # host-wide claims on task uids, shared by every local backend here (BAY_TASK_UID_CLAIMS; see
    # uidclaims.py); None: none (a second backend on this host may then hand out the same uids)
    uid_claims_dir: Path | None = DEFAULT_CLAIMS_DIR
    # artifacts (``LaunchSpec.fetch``): fetched by the task's wrapper, as the task (fetch.py)
    fetch_timeout_seconds: float = 300.0  # per artifact, the whole download (BAY_FETCH_TIMEOUT_SECONDS)
    fetch_max_bytes: int = 4 << 30  # BAY_FETCH_MAX_BYTES
    fetch_python: str = ""  # an interpreter the task's uid can run; "" finds one (BAY_FETCH_PYTHON)
    # a task's stdout and stderr, each: rotated at this size, this many rotated files kept
    # (logwriter.py, run with fetch_python): at most (keep + 1) x max_bytes per stream
    log_max_bytes: int = 10 << 20  # BAY_LOG_MAX_BYTES
    log_keep: int = 3  # BAY_LOG_KEEP

    @property
    def sandboxes_dir(self) -> Path:
        return self.work_dir / "sandboxes"
