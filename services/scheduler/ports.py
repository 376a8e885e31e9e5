"""The scheduler's ports: what a cluster backend (local processes, Mesos) offers the scheduler core.

The core is backend-neutral: it reads :class:`Host` capacity, decides placements (pure domain, see
``services/scheduler/domain``), asks the backend to :meth:`ClusterBackend.launch` and
:meth:`ClusterBackend.kill`, and folds the :class:`TaskStatus` updates the backend pushes into task
events. Mesos is offer-based, so capacity comes and goes with offers; the local backend offers this
machine's configured resources minus what its tasks hold.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from libs.events.model import TERMINAL as TERMINAL

# the task state vocabulary is the event contract's; backends speak it too
from libs.events.model import Artifact as Artifact
from libs.events.model import TaskState as TaskState


@dataclass(frozen=True)
class PortRange:
    begin: int
    end: int  # inclusive, like Mesos ranges


@dataclass(frozen=True)
class Host:
    """Free capacity on one host, as of now: a Mesos offer, or this machine for the local backend."""

    host_id: str  # Mesos agent id, or "local"
    hostname: str
    labels: Mapping[str, str]  # Mesos agent attributes (TEXT/SCALAR as text), or configured labels
    cpus: float
    mem: float  # MiB
    disk: float  # MiB
    ports: tuple[PortRange, ...]
    offer_id: str | None = None  # Mesos: the offer these resources come from (good once)


@dataclass(frozen=True)
class HealthCheckSpec:
    protocol: str  # http | tcp | command
    path: str = "/"
    port_name: str = ""
    command: str = ""
    grace_period_seconds: float = 30.0
    interval_seconds: float = 5.0
    timeout_seconds: float = 2.0
    max_consecutive_failures: int = 3


@dataclass(frozen=True)
class LaunchSpec:
    """One task to start on one host."""

    task_id: str  # "<group>.<uuid>": the group is readable from the id
    group: str
    group_version: int
    host_id: str
    offer_id: str | None
    cmd: str | None
    image: str | None
    args: tuple[str, ...]
    env: Mapping[str, str]
    cpus: float
    mem: float
    disk: float
    ports: Mapping[str, int]  # port name -> host port; env gets PORT0.., PORT_<NAME>, HOST
    health_check: HealthCheckSpec | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # fetched into the sandbox before ``cmd`` runs (a build's artifact); a digest mismatch fails
    # the task (Mesos: CommandInfo.uris, which its fetcher honours the same way)
    fetch: tuple[Artifact, ...] = ()


@dataclass(frozen=True)
class CommandContext:
    """Where and as whom a task's command health check runs: as the task itself does."""

    cwd: str
    run_as: tuple[str, ...] = ()  # a prefix that runs a command as the task's user (e.g. setpriv)


@dataclass(frozen=True)
class TaskStatus:
    """A task's state as its backend reports it."""

    task_id: str
    state: TaskState
    host_id: str
    hostname: str
    timestamp: float
    message: str = ""
    reason: str = ""  # Mesos reason (e.g. REASON_INVALID_OFFERS, REASON_RECONCILIATION)
    healthy: bool | None = None  # set when the backend runs the health check (Mesos)
    exit_code: int | None = None


@dataclass(frozen=True)
class TaskUsage:
    task_id: str
    timestamp: float
    cpu_seconds: float  # cumulative
    mem_bytes: int
    cpus_limit: float = 0.0
    mem_limit_bytes: int = 0


StatusSink = Callable[[TaskStatus], Awaitable[None]]


class ClusterBackend(abc.ABC):
    """One cluster. Status updates are pushed to the sink given to :meth:`start`, in order per task."""

    kind: str  # "local" | "mesos": for logs; the service layer asks the capabilities below instead
    #: capacity comes as offers that are declined or used, revived and suppressed (Mesos); when
    #: none are in hand, tasks wait for offers rather than fail to place
    offer_based: bool = False
    #: the backend runs health checks itself and reports them with status updates (Mesos agents);
    #: else the scheduler runs them
    checks_health: bool = False

    def host_address(self, host_id: str, hostname: str) -> str:
        """Where clients reach the tasks of a host (what DNS answers): its IP address where the
        backend knows one, else its hostname."""
        return hostname

    def command_context(self, task_id: str) -> CommandContext | None:
        """Where a command health check of the task runs, and as whom (the backends that run tasks
        on this machine know; None: in the scheduler's directory with its rights)."""
        return None

    async def end_tasks(self, task_ids: list[str], grace_seconds: float) -> None:
        """Kill these tasks and return once they have ended (or the grace and a little more has
        passed): what a stack that owns the cluster's tasks does when it stops. Default: kill."""
        for task_id in task_ids:
            await self.kill(task_id, grace_seconds)

    @abc.abstractmethod
    async def start(self, sink: StatusSink) -> None:
        """Connect (Mesos: subscribe, re-using the framework id), re-adopt or reconcile tasks."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect; running tasks keep running (a restarted scheduler re-adopts them)."""

    @abc.abstractmethod
    async def capacity(self) -> list[Host]:
        """Hosts with free resources now (Mesos: outstanding offers)."""

    @abc.abstractmethod
    async def launch(self, tasks: list[LaunchSpec]) -> None:
        """Start tasks; each then reports STARTING/RUNNING or a terminal state through the sink."""

    @abc.abstractmethod
    async def kill(self, task_id: str, grace_seconds: float = 10.0) -> None:
        """SIGTERM (Mesos: KILL call), then SIGKILL after the grace; KILLED comes through the sink."""

    @abc.abstractmethod
    async def reconcile(self, task_ids: list[str]) -> None:
        """Ask for the current state of these tasks (empty: all); answers come through the sink."""

    async def want_offers(self, wanted: bool) -> None:
        """Mesos: revive when something is pending, suppress when nothing is. Local: nothing."""
        return None

    async def decline(self, offer_ids: list[str], refuse_seconds: float) -> None:
        """Mesos: decline unused offers with a filter. Local: nothing."""
        return None

    @abc.abstractmethod
    async def usage(self) -> list[TaskUsage]:
        """CPU and memory of running tasks (local: cgroup or /proc; Mesos: agent statistics)."""

    @abc.abstractmethod
    def logs(
        self, task_id: str, stream: str = "stdout", *, tail: int = 100, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """A task's stdout or stderr: the last ``tail`` lines, then new output when following."""
