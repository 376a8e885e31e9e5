"""Scheduler settings (``BAY_*`` environment variables). One scheduler process runs per cluster."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from libs import defaults
from libs.settings import CommonSettings
from services.scheduler.backends.local.config import DEFAULT_TASK_NICE
from services.scheduler.backends.local.identity import DEFAULT_UIDS, DEFAULT_USER


class SchedulerSettings(CommonSettings):
    metrics_listen: str = Field(
        defaults.SCHEDULER_METRICS_ADDRESS,
        description='its Prometheus /metrics host:port ("": none; another cluster\'s scheduler: set it)',
    )
    cluster: str = Field("local", description="the cluster this scheduler runs (a registered cluster)")
    backend: str = Field("", description="local or mesos; empty: the backend the cluster was registered with")
    mesos_master: str = Field("", description="Mesos master host:port; empty: the cluster's address")
    scheduler_listen: str = Field(
        defaults.SCHEDULER_ADDRESS, description="where this scheduler's gRPC listens"
    )
    lease_seconds: float = Field(
        10.0,
        ge=1,
        description="a cluster's scheduler lease: a dead holder on another host frees it this late",
    )
    snapshot_every: int = Field(50_000, gt=0, description="events between two scheduler snapshots")
    anonymous_read: bool = Field(False, description="allow reads without a token")
    kill_grace_seconds: float = Field(5.0, ge=0, description="SIGTERM, then SIGKILL after this long")
    drain_seconds: float = Field(
        6.0,
        ge=0,
        le=3600,
        description="a serving task asked to go (scale-down, old version, moved group) leaves DNS at "
        "once and is killed this much later, so clients holding a DNS answer (TTL 5 s) still reach it",
    )
    launch_limit: int = Field(1000, gt=0, description="launches per scheduling round at most")
    usage_interval_seconds: float | None = Field(
        None,
        gt=0,
        description="how often task usage is published (the autoscaler's input); default 1 s on the "
        "local backend, 2 s on Mesos (every agent running tasks of ours is asked each time)",
    )
    reconcile_interval_seconds: float = Field(300.0, gt=0, description="full reconciliation period")
    health_start_interval_seconds: float = Field(
        0.25, gt=0, description="a task's HTTP or TCP check runs this often (at most its interval) until it "
        "first passes, so a started task is ready soon after it answers",
    )  # fmt: skip
    local_hostname: str = Field("", description="local backend: the host's name (default: hostname)")
    local_address: str = Field("127.0.0.1", description="local backend: the address tasks listen on")
    local_labels: dict[str, str] = Field(default_factory=dict, description='host labels, JSON: {"zone":"a"}')
    local_cpus: float = Field(0.0, ge=0, description="cpus offered to tasks; 0: this machine's count")
    local_mem: float = Field(0.0, ge=0, description="MiB offered to tasks; 0: this machine's memory")
    local_disk: float = Field(10240.0, ge=0, description="MiB of disk offered to tasks")
    local_port_begin: int = Field(31000, gt=0, lt=65536)
    local_port_end: int = Field(31999, gt=0, lt=65536)
    local_cgroups: bool = Field(True, description="enforce cpus/mem with cgroup v2 where delegated")
    local_task_nice: int = Field(
        DEFAULT_TASK_NICE, ge=0, le=19, description="local tasks run at this niceness (0: as the "
        "scheduler), so that tasks that burn every core cannot starve the platform's own processes",
    )  # fmt: skip
    local_work_dir: Path | None = Field(None, description="default <data_dir>/local/<cluster>")
    fetch_timeout_seconds: float = Field(
        300.0, gt=0, description="local tasks: the most one artifact's download may take"
    )
    fetch_max_bytes: int = Field(4 << 30, gt=0, description="local tasks: the largest artifact fetched")
    fetch_python: str = Field(
        "", description="local tasks: the interpreter that fetches artifacts as the task (default: found)"
    )
    log_max_bytes: int = Field(
        10 << 20, ge=4096, description="local tasks: stdout and stderr are rotated at this size (bytes)"
    )
    log_keep: int = Field(
        3, ge=0, le=100, description="local tasks: rotated files kept per stream (stdout.1 ... stdout.N)"
    )
    task_user: str = Field(
        DEFAULT_USER,
        min_length=1,
        description="local tasks run in this account's group (make setup makes it)",
    )
    task_uids: str = Field(
        f"{DEFAULT_UIDS[0]}-{DEFAULT_UIDS[1]}",
        description="local tasks: each runs as its own uid from this range (first-last, no account's)",
    )

    task_uid_claims: str = Field(
        "/run/bay/task-uids",
        description="local tasks: host-wide claims on task uids, shared by every local backend on this "
        "host so that none hands out another's (empty: none)",
    )

    @field_validator("task_uids")
    @classmethod
    def _uid_range(cls, value: str) -> str:
        first, sep, last = value.partition("-")
        if not (sep and first.strip().isdigit() and last.strip().isdigit()):
            raise ValueError("a range of uids, first-last, e.g. 1900000-1999999")
        if not 0 < int(first) <= int(last) < 2**32 - 1:
            raise ValueError("first-last with 0 < first <= last < 4294967295")
        return value

    @property
    def task_uid_range(self) -> tuple[int, int]:
        first, _, last = self.task_uids.partition("-")
        return int(first), int(last)
