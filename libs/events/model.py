"""Every event type of every Bay service as a typed, frozen value (the wire form is in ``protos/``).

Events are named in the past tense. A value holds what the event says; where it sits (aggregate,
sequence, time, who asked, what caused it) is the envelope's, see :class:`libs.events.Event`. Task and
scheduler events carry their time as ``at`` because their domain folds need it; it is always the
envelope's time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from libs.spec import GroupSpec

if TYPE_CHECKING:  # the values only carry the messages; the model imports no generated code at run time
    from bay.v1 import autoscale_pb2

# ---- the task state vocabulary (Mesos' words; the local backend uses the same) ----


class TaskState(enum.StrEnum):
    STAGING = "STAGING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    KILLING = "KILLING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ERROR = "ERROR"
    LOST = "LOST"
    DROPPED = "DROPPED"
    UNREACHABLE = "UNREACHABLE"
    GONE = "GONE"
    GONE_BY_OPERATOR = "GONE_BY_OPERATOR"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


#: the states a task never leaves
TERMINAL = frozenset(
    {
        TaskState.FINISHED,
        TaskState.FAILED,
        TaskState.KILLED,
        TaskState.ERROR,
        TaskState.LOST,
        TaskState.DROPPED,
        TaskState.GONE,
        TaskState.GONE_BY_OPERATOR,
    }
)

# ---- what registry events refer to ----


@dataclass(frozen=True)
class Cluster:
    name: str
    backend: str
    address: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    registered: float = 0.0  # the time of its first ClusterRegistered event
    scheduler_address: str = ""  # host:port of the cluster's scheduler; "" when none was registered


@dataclass(frozen=True)
class Artifact:
    """A file fetched into a task's sandbox before its command runs."""

    uri: str
    sha256: str
    extract: bool = False
    executable: bool = False


@dataclass(frozen=True)
class Build:
    """Immutable: an image pinned by digest, or an artifact and the command that runs it."""

    id: str
    image: str
    commit: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    registered: float = 0.0
    artifact: Artifact | None = None
    cmd: str = ""
    branch: str = ""
    built_by: str = ""


@dataclass(frozen=True)
class VersionTarget:
    """What runs of one spec version of a group (see :mod:`libs.views.groups`)."""

    version: int
    spec: GroupSpec
    instances: int
    in_service: bool = True
    weight: float | None = None  # percent of the group's traffic; None: by task count


# ---- the registry's events ----


@dataclass(frozen=True)
class GroupCreated:
    spec: GroupSpec
    version: int


@dataclass(frozen=True)
class GroupUpdated:
    spec: GroupSpec
    version: int


@dataclass(frozen=True)
class GroupScaled:
    instances: int
    previous: int
    reason: str = ""


@dataclass(frozen=True)
class GroupRolledBack:
    spec: GroupSpec
    version: int
    restored_version: int


@dataclass(frozen=True)
class GroupDeleted:
    version: int


@dataclass(frozen=True)
class NothingChanged:
    """A command with an idempotency key changed nothing; it is recorded so the key is remembered
    (across restarts: it is in the log). It changes nothing but the aggregate's version."""

    command: str


@dataclass(frozen=True)
class ClusterRegistered:
    cluster: Cluster


@dataclass(frozen=True)
class BuildRegistered:
    build: Build


@dataclass(frozen=True)
class GroupRolloutChanged:
    """What runs per version was set (by the deployer): ``targets`` replace the group's whole."""

    targets: tuple[VersionTarget, ...]
    deployment: str = ""
    reason: str = ""


GroupEvent = GroupCreated | GroupUpdated | GroupScaled | GroupRolledBack | GroupDeleted | GroupRolloutChanged
GROUP_EVENTS = (GroupCreated, GroupUpdated, GroupScaled, GroupRolledBack, GroupDeleted, GroupRolloutChanged)
RegistryEvent = GroupEvent | ClusterRegistered | BuildRegistered | NothingChanged

# ---- a cluster scheduler's events ----


@dataclass(frozen=True)
class TaskLaunched:
    task_id: str
    group: str
    group_version: int
    host_id: str
    hostname: str
    ports: Mapping[str, int]
    cpus: float
    mem: float
    disk: float
    at: float
    host_labels: Mapping[str, str] = field(default_factory=dict)
    cluster: str = ""
    host_address: str = ""  # where clients reach its ports (an IP, or the agent's hostname)
    service: str = ""  # the group's DNS service name at launch


@dataclass(frozen=True)
class TaskStatusChanged:
    task_id: str
    state: TaskState
    at: float
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    healthy: bool | None = None  # Mesos runs health checks itself and reports them with the status


@dataclass(frozen=True)
class TaskHealthChanged:
    task_id: str
    healthy: bool | None
    failures: int
    at: float
    message: str = ""


@dataclass(frozen=True)
class TaskKillRequested:
    task_id: str
    reason: str  # surplus | old-version | unhealthy | orphan | operator | shutdown
    at: float
    drain_until: float = 0.0  # the kill is sent then (out of DNS until); 0: at once


@dataclass(frozen=True)
class PlacementFailed:
    """``count`` tasks of ``group`` found no host; ``reasons`` = check -> hosts that failed it."""

    group: str
    count: int
    reasons: Mapping[str, int]
    hosts: int
    at: float


@dataclass(frozen=True)
class GroupBackoffChanged:
    """The group's launch delay grew (a task failed or finished) or was reset (new version)."""

    group: str
    version: int
    failures: int
    delay: float
    next_attempt_at: float
    at: float


@dataclass(frozen=True)
class FrameworkRegistered:
    framework_id: str
    master: str
    at: float


TaskEvent = TaskLaunched | TaskStatusChanged | TaskHealthChanged | TaskKillRequested
SchedEvent = PlacementFailed | GroupBackoffChanged
TASK_EVENTS = (TaskLaunched, TaskStatusChanged, TaskHealthChanged, TaskKillRequested)
SchedulerEvent = TaskEvent | SchedEvent | FrameworkRegistered

# ---- the deployer's events (bay.ev.deploy.<group>) ----


@dataclass(frozen=True)
class Threshold:
    """``metric`` (failed_tasks | restarts | ready_fraction | cpu | mem | custom:<name>) ``op`` value."""

    metric: str
    op: str
    value: float


@dataclass(frozen=True)
class Analysis:
    seconds: float
    thresholds: tuple[Threshold, ...] = ()
    no_data: str = "wait"  # wait (then fail at the end) | pass (at the end) | fail


@dataclass(frozen=True)
class CanaryStep:
    """One of: ``share`` (fraction of the instances), ``weight`` (percent of the traffic), ``pause``
    (``seconds``, None: until promoted), ``analysis``."""

    kind: str  # share | weight | pause | analysis
    value: float | None = None  # share, weight, or the pause's seconds
    analysis: Analysis | None = None


@dataclass(frozen=True)
class Strategy:
    """A deployment's strategy; unset numbers take the defaults (see services/deployer/domain)."""

    kind: str = "rolling"  # rolling | recreate | canary | blue-green | migration
    minimum_health_capacity: float | None = None
    maximum_over_capacity: float | None = None
    steps: tuple[CanaryStep, ...] = ()
    min_ready_seconds: float | None = None
    progress_deadline_seconds: float | None = None
    scale_down_delay_seconds: float | None = None
    no_auto_rollback: bool = False
    auto_promote: bool = False


@dataclass(frozen=True)
class DeploymentCreated:
    id: str
    strategy: Strategy
    from_version: int
    from_build: str
    from_cluster: str
    to_spec: GroupSpec
    superseded_previous: bool = False
    from_spec: GroupSpec | None = None
    automatic: bool = False


@dataclass(frozen=True)
class DeploymentTargetSet:
    id: str
    to_version: int


@dataclass(frozen=True)
class DeploymentStepStarted:
    id: str
    index: int
    name: str


@dataclass(frozen=True)
class DeploymentStepFinished:
    id: str
    index: int
    outcome: str  # done | failed | skipped
    message: str = ""


@dataclass(frozen=True)
class DeploymentPaused:
    id: str
    reason: str = ""


@dataclass(frozen=True)
class DeploymentResumed:
    id: str


@dataclass(frozen=True)
class DeploymentPromoted:
    id: str
    all: bool = False


@dataclass(frozen=True)
class DeploymentAborted:
    id: str
    reason: str = ""


@dataclass(frozen=True)
class DeploymentRolledBack:
    id: str
    reason: str = ""
    to_version: int = 0


@dataclass(frozen=True)
class DeploymentSucceeded:
    id: str


@dataclass(frozen=True)
class DeploymentFailed:
    id: str
    reason: str = ""


@dataclass(frozen=True)
class DeploymentSuperseded:
    id: str
    by: str = ""


@dataclass(frozen=True)
class DeploymentProgressed:
    id: str
    new_ready: int
    new_running: int
    old_running: int
    min_ready: int = 0
    max_running: int = 0
    instances: int = 0


DeploymentEvent = (
    DeploymentCreated | DeploymentTargetSet | DeploymentStepStarted | DeploymentStepFinished
    | DeploymentPaused | DeploymentResumed | DeploymentPromoted | DeploymentAborted
    | DeploymentRolledBack | DeploymentSucceeded | DeploymentFailed | DeploymentSuperseded
    | DeploymentProgressed
)  # fmt: skip
DEPLOYMENT_EVENTS = (
    DeploymentCreated, DeploymentTargetSet, DeploymentStepStarted, DeploymentStepFinished,
    DeploymentPaused, DeploymentResumed, DeploymentPromoted, DeploymentAborted,
    DeploymentRolledBack, DeploymentSucceeded, DeploymentFailed, DeploymentSuperseded,
    DeploymentProgressed,
)  # fmt: skip

# ---- the autoscaler's events, on bay.ev.autoscale.<group> ----
# Their policy, decision and window state stay protobuf messages (bay.v1.AutoscalePolicy, ...): the
# one typed form of a policy is the autoscaler's domain (services/autoscaler/domain/policy.py), which
# converts at its adapters; a second dataclass copy here would be a second truth to keep in step.
# Readers other than the autoscaler (the gateway, the CLI) render the messages as they are.


@dataclass(frozen=True)
class AutoscalePolicySet:
    policy: autoscale_pb2.AutoscalePolicy


@dataclass(frozen=True)
class AutoscalePolicyRemoved:
    reason: str = ""


@dataclass(frozen=True)
class AutoscaleDecided:
    """A decision that changed the group's count (the autoscaler asks the registry right after)."""

    decision: autoscale_pb2.AutoscaleDecision


@dataclass(frozen=True)
class AutoscaleWindow:
    """A snapshot of the decision windows (the domain's State), so a restart resumes them."""

    state: autoscale_pb2.AutoscaleWindowState


AutoscaleEvent = AutoscalePolicySet | AutoscalePolicyRemoved | AutoscaleDecided | AutoscaleWindow
AUTOSCALE_EVENTS = (AutoscalePolicySet, AutoscalePolicyRemoved, AutoscaleDecided, AutoscaleWindow)

EventData = RegistryEvent | SchedulerEvent | DeploymentEvent | AutoscaleEvent
