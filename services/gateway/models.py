"""Request and response shapes of the REST API (the wire types stay in ``bay.v1``; see adapters)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from libs.addresses import HOST_PORT_RE, parse_host_port
from libs.errors import ValidationFailed
from libs.spec import MAX_INSTANCES, MAX_VERSION, DnsLabel, GroupSpec


class _In(BaseModel):
    # strict: "5" and true are not numbers (a request says what it means)
    model_config = ConfigDict(extra="forbid", strict=True)


# ---- requests (the group spec itself is libs.spec.GroupSpec) ----


class ScaleRequest(_In):
    instances: int = Field(ge=0, le=MAX_INSTANCES)
    reason: str = Field("", max_length=1024, description="kept in the GroupScaled event")


class RollbackRequest(_In):
    version: int = Field(ge=1, le=MAX_VERSION, description="the spec version to restore (instances are kept)")


class ClusterRequest(_In):
    name: DnsLabel
    backend: Literal["local", "mesos"]
    address: str = Field("", max_length=1024, description="mesos: the master's URL")
    labels: dict[str, str] = Field(default_factory=dict)
    scheduler_address: str = Field(
        "",
        json_schema_extra={"pattern": f"^$|{HOST_PORT_RE}"},  # checked below, with a readable message
        description="host:port of the cluster's scheduler (gRPC). Registering the cluster again with "
        "only another scheduler_address records the change; empty keeps the registered one",
    )

    @field_validator("scheduler_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            try:
                parse_host_port(value, field="scheduler_address")
            except ValidationFailed as exc:
                raise ValueError(exc.violations[0].description) from None
        return value


class Artifact(_In):
    """A file a task fetches into its sandbox before its command runs."""

    uri: str = Field(min_length=1, max_length=4096, description="file:///... or http(s)://...")
    sha256: str = Field(description="the file's sha256, 64 lowercase hex digits; a mismatch fails the task")
    extract: bool = Field(False, description="unpack .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip")
    executable: bool = Field(False, description="chmod +x (a single binary)")


class BuildRequest(_In):
    """Either ``image`` (pinned by digest) or ``artifact`` and ``cmd``; the registry checks which."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    image: str = Field("", max_length=1024, description="NAME@sha256:<64 hex>")
    artifact: Artifact | None = None
    cmd: str = Field("", max_length=16384, description="runs the artifact, in the task's sandbox")
    commit: str = Field("", max_length=256)
    branch: str = Field("", max_length=256)
    built_by: str = Field("", max_length=256, description="empty: the caller's token name")
    metadata: dict[str, str] = Field(default_factory=dict)


# ---- responses ----


class GroupTarget(BaseModel):
    """What runs of one spec version of a group (its spec: ``GET /v1/groups/{name}/history``)."""

    version: int
    build: str = Field(description="the build that version runs (its spec.build); empty: none")
    instances: int
    in_service: bool = Field(description="its ready tasks answer under the group's service name")
    weight: float | None = Field(description="percent of the group's traffic; null: by task count")


class Group(BaseModel):
    spec: GroupSpec
    version: int = Field(description="spec version: +1 on create, update and rollback")
    aggregate_version: int = Field(description="events applied to this group")
    created: datetime
    updated: datetime
    deleted: bool
    targets: list[GroupTarget] = Field(
        default_factory=list, description="per version: what runs now (several during a deployment)"
    )


class GroupReply(BaseModel):
    group: Group
    sequence: int = Field(description="stream sequence of the appended event")
    duplicate: bool = Field(description="the Idempotency-Key had been seen: nothing new was appended")


class GroupList(BaseModel):
    groups: list[Group]


class Event(BaseModel):
    """One event as ``libs.eventjson`` renders it."""

    sequence: int
    subject: str
    id: str
    type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    time: str
    actor: str
    correlation_id: str
    causation_id: str
    idempotency_key: str
    data: dict[str, Any]


class EventList(BaseModel):
    events: list[Event]


class EventPage(BaseModel):
    events: list[Event]
    next_after: int | None = Field(description="pass as `after` for the next page; null at the end")


class Cluster(BaseModel):
    name: str
    backend: str
    address: str = Field(description="mesos: the master's URL; local: empty")
    labels: dict[str, str]
    registered: datetime = Field(description="the first registration")
    scheduler_address: str = Field(
        description="host:port of the cluster's scheduler (gRPC); empty: not registered"
    )


class ClusterList(BaseModel):
    clusters: list[Cluster]


class Build(BaseModel):
    id: str
    image: str = Field(description="empty for an artifact build")
    artifact: Artifact | None
    cmd: str
    commit: str
    branch: str
    built_by: str
    metadata: dict[str, str]
    registered: datetime


class BuildList(BaseModel):
    builds: list[Build]


class Task(BaseModel):
    """One running copy of a group on one host, as its cluster's scheduler knows it."""

    id: str = Field(description="<group>.<uuid>")
    group: str
    group_version: int = Field(description="the group's spec version the task runs")
    cluster: str
    host_id: str = Field(description="Mesos agent id, or `local`")
    hostname: str
    host_address: str = Field(description="where the task's ports are reached")
    ports: dict[str, int] = Field(description="port name -> host port")
    state: str = Field(description="STAGING, STARTING, RUNNING, KILLING, FINISHED, FAILED, KILLED, LOST...")
    ready: bool = Field(description="healthy, or running where the group has no health check")
    healthy: bool | None = Field(description="null: not checked (yet)")
    health_failures: int = Field(description="consecutive failed health checks")
    launched_at: datetime
    started_at: datetime | None = Field(description="first RUNNING; null before")
    updated_at: datetime
    message: str
    exit_code: int | None
    kill_reason: str = Field(description="surplus, unhealthy, orphan or operator once asked to go")
    cpus: float
    mem: float
    disk: float
    host_labels: dict[str, str]


class Pending(BaseModel):
    """Why some of a group's tasks are not launched."""

    count: int = Field(description="tasks wanted but not launched")
    reasons: dict[str, int] = Field(description="placement check -> hosts failing it")
    hosts: int = Field(description="hosts considered at the last placement")
    next_attempt_at: datetime | None = Field(description="launch backoff: the next try; null: no backoff")
    backoff_delay: float
    backoff_failures: int
    summary: str = Field(description="one line for humans; empty when nothing is pending")


class GroupStatus(BaseModel):
    """A group's task counts in its cluster, as of event-log sequence ``sequence``."""

    group: str
    cluster: str
    version: int = Field(description="the spec version the scheduler knows")
    desired: int
    staged: int = Field(description="launched, not yet running")
    running: int
    healthy: int
    unhealthy: int
    ready: int = Field(description="healthy, or running where there is no health check")
    killing: int
    has_health_check: bool
    known: bool = Field(description="false: the scheduler has not (yet) seen the group")
    pending: Pending
    sequence: int


class GroupTasks(BaseModel):
    group: str
    cluster: str
    status: GroupStatus
    tasks: list[Task]


class DnsRecord(BaseModel):
    name: str = Field(description='absolute, e.g. "web.local.bay.internal."')
    type: str = Field(description="A, AAAA or SRV")
    ttl: int
    data: str = Field(description='presentation form: "10.0.0.1", "0 50 31001 <target>."')
    task_id: str = Field(description="the task behind the record; empty for host records")


class DnsTask(BaseModel):
    """One of the service's tasks, and whether the DNS service answers with it."""

    id: str
    group: str
    cluster: str
    state: str
    answered: bool = Field(description="in the answers now")
    reason: str = Field(description='why not, e.g. "health not checked yet"; empty when answered')
    addresses: list[str] = Field(description="its host's addresses, as the DNS service resolved them")
    ports: dict[str, int]


class DnsGroup(BaseModel):
    name: str
    cluster: str
    share: float = Field(
        description="its weight among the service's groups: its instances, or its `bay.dns/weight` "
        "label; SRV weights follow it"
    )
    health_checked: bool = Field(description="only healthy tasks are answered")


class DnsLookup(BaseModel):
    """What the DNS service would answer for a service now, and why a task is not in it."""

    service: str
    cluster: str = Field(description="the cluster asked about; empty: every cluster")
    zone: str = Field(description='e.g. "bay.internal."')
    exists: bool = Field(description="a group registers the service (an unknown service is a 404)")
    names: list[str] = Field(description="every name that answers for the service")
    records: list[DnsRecord]
    tasks: list[DnsTask]
    groups: list[DnsGroup]


class DnsStats(BaseModel):
    """The DNS service's zone and counters (counters since its start)."""

    zone: str
    ttl: int
    services: int
    groups: int
    tasks: int
    ready_tasks: int = Field(description="tasks in the answers")
    sequence: int = Field(description="the last event the DNS service has folded")
    queries: int
    cache_hits: int
    cached_answers: int
    forwarded: int = Field(description="queries for outside names sent to BAY_DNS_UPSTREAMS")
    refused: int
    formerr: int
    upstreams: list[str]


class FoldHealth(BaseModel):
    sequence: int = Field(description="the last event of the log it folded")
    skipped: int = Field(description="events it could not decode or apply and skipped, since it started")
    last_skipped_sequence: int | None = Field(description="the stream sequence of the last one; null: none")


class Health(BaseModel):
    status: Literal["ok", "degraded", "unhealthy"] = Field(
        description="unhealthy (HTTP 503): the gateway's own NATS connection has stayed down; "
        "degraded: the registry does not serve or NATS is reconnecting"
    )
    nats: bool
    registry: bool
    schedulers: dict[str, bool] = Field(
        description="each cluster's scheduler answering; informative: `status` does not count it"
    )
    dns: bool = Field(description="the DNS service answering (BAY_DNS_ADDR); informative, like schedulers")
    deployer: bool = Field(
        False, description="the deployer answering (BAY_DEPLOYER_ADDR); informative, like schedulers"
    )
    folds: dict[str, FoldHealth] = Field(
        description='each service folding the log that answered ("registry", "scheduler.<cluster>", '
        '"dns"): how far it is and what it skipped'
    )


class Violation(BaseModel):
    field: str
    description: str


class Error(BaseModel):
    error: str = Field(description="short code, e.g. validation_failed, conflict, unavailable")
    message: str
    hint: str
    violations: list[Violation] | None = Field(None, description="only on 422")
    current_version: int | None = Field(
        None, description="only on 409 for a stale If-Match: the group's version now, to retry against"
    )


# ---- deployments (the deployer's bay.v1.Deployment; see routes/deployments.py) ----

StrategyKind = Literal["rolling", "recreate", "canary", "blue-green"]
#: what an analysis may check: the platform's own measures, or a custom metric published for the group
METRIC_RE = r"^(failed_tasks|restarts|ready_fraction|cpu|mem|custom:[A-Za-z0-9_.-]{1,128})$"


class PauseStep(_In):
    seconds: float | None = Field(None, gt=0, le=7 * 86400, description="null: until promoted")


class Threshold(_In):
    metric: str = Field(
        json_schema_extra={"pattern": METRIC_RE},
        description="failed_tasks, restarts, ready_fraction, cpu, mem or custom:<name>",
    )
    op: Literal["<", "<=", ">", ">="] = Field(description="the value must satisfy it to pass")
    value: float

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if not re.fullmatch(METRIC_RE, value):
            raise ValueError(
                f"must be failed_tasks, restarts, ready_fraction, cpu, mem or custom:<name>, not {value!r}"
            )
        return value


class AnalysisStep(_In):
    seconds: float = Field(gt=0, le=86400, description="how long to observe")
    thresholds: list[Threshold] = Field(default_factory=list, max_length=32)
    no_data: Literal["wait", "fail"] = Field(
        "wait", description="a metric without a value yet: wait (it is not a pass), or fail"
    )


class CanaryStep(_In):
    """Exactly one of its fields: ``{"set_share": 0.2}``, ``{"set_weight": 50}``, ``{"pause":
    {"seconds": 30}}`` (``{"pause": {}}``: until promoted), ``{"analysis": {...}}``."""

    set_share: float | None = Field(
        None, gt=0, le=1, description="fraction of the instances that run the new version"
    )
    set_weight: float | None = Field(
        None, gt=0, le=100, description="percent of the group's traffic to the new version"
    )
    pause: PauseStep | None = None
    analysis: AnalysisStep | None = None

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        given = [k for k in ("set_share", "set_weight", "pause", "analysis") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of set_share, set_weight, pause, analysis"
                + (f" (not {' and '.join(given)})" if given else "")
            )
        return self


class Strategy(_In):
    """How a deployment replaces the old version; unset fields default from the group's
    ``upgrade_strategy`` (and the deployer's defaults)."""

    kind: StrategyKind | None = Field(None, description="null: rolling")
    minimum_health_capacity: float | None = Field(
        None, ge=0, le=1, description="rolling: never fewer than ceil(n * this) ready"
    )
    maximum_over_capacity: float | None = Field(
        None, ge=0, le=1, description="rolling: never more than floor(n * (1 + this)) running"
    )
    steps: list[CanaryStep] = Field(default_factory=list, max_length=64, description="canary only")
    min_ready_seconds: float | None = Field(
        None, ge=0, le=86400, description="a new task counts once it has been ready this long"
    )
    progress_deadline_seconds: float | None = Field(
        None, gt=0, le=7 * 86400, description="no progress for this long: failed (pauses do not count)"
    )
    scale_down_delay_seconds: float | None = Field(
        None, ge=0, le=7 * 86400, description="blue-green: the old version stays this long after the switch"
    )
    no_auto_rollback: bool = Field(False, description="a failed deployment stays where it failed")
    auto_promote: bool = Field(False, description="blue-green: switch once the new version is ready")

    @field_validator("steps")
    @classmethod
    def _steps_for_canary(cls, steps: list[CanaryStep], info: ValidationInfo) -> list[CanaryStep]:
        kind = info.data.get("kind")
        if steps and kind != "canary":
            raise ValueError(f"steps are for kind canary, not {kind or 'rolling'}")
        return steps


class DeployRequest(_In):
    """A build (``build``) or a whole new spec (``spec``), and/or another ``cluster`` (a migration):
    at least one of them; not both a build and a spec."""

    build: str = Field("", max_length=256, description="a registered build's id")
    spec: dict[str, Any] | None = Field(
        None, description="a whole new group spec (GroupSpec); its name may be left out"
    )
    cluster: str = Field("", max_length=63, description="move the group to this cluster")
    strategy: Strategy = Field(default_factory=Strategy)
    supersede: bool = Field(False, description="replace a running deployment of the group on purpose")
    reason: str = Field("", max_length=1024, description="kept in the deployment's events")


class ControlRequest(_In):
    reason: str = Field("", max_length=1024, description="kept in the deployment's events")


class DeploymentStep(BaseModel):
    name: str = Field(description='e.g. "share 20%", "pause 30s", "analysis", "switch", "drain"')
    state: str = Field(description="pending, running, done or failed")
    started: datetime | None
    finished: datetime | None
    message: str


class StrategyOut(BaseModel):
    """The strategy as the deployer resolved it (defaults filled in)."""

    kind: str
    minimum_health_capacity: float | None
    maximum_over_capacity: float | None
    steps: list[dict[str, Any]] = Field(description="as in a request: one key per step")
    min_ready_seconds: float | None
    progress_deadline_seconds: float | None
    scale_down_delay_seconds: float | None
    no_auto_rollback: bool
    auto_promote: bool


class Deployment(BaseModel):
    """A deployment of a group from one version (and build, and cluster) to another."""

    id: str = Field(description="<group>-<n>")
    group: str
    state: str = Field(description="running, paused, succeeded, failed, aborted, rolled_back or superseded")
    strategy: StrategyOut
    from_version: int = Field(description="the stable version it started from")
    to_version: int = Field(description="0 until the registry holds the new spec")
    from_build: str
    to_build: str
    from_cluster: str
    to_cluster: str
    steps: list[DeploymentStep]
    current_step: int
    reason: str = Field(description="why it ended, paused or failed")
    actor: str
    created: datetime
    updated: datetime
    paused_seconds: float = Field(description="time spent paused (the progress deadline does not count it)")
    instances: int = Field(description="the group's instance count")
    new_ready: int = Field(description="tasks of the new version counted ready (min_ready_seconds met)")
    new_running: int
    old_running: int
    min_ready: int = Field(description="the rolling bound: never fewer ready")
    max_running: int = Field(description="the rolling bound: never more running")
    aggregate_version: int
    rolling_back: bool = Field(description="failed or aborted, and on its way back to the stable version")
    ended: bool = Field(
        description="over: succeeded, rolled back (after a failure or an abort), superseded, or failed "
        "without a rollback"
    )


class DeploymentReply(BaseModel):
    deployment: Deployment
    duplicate: bool = Field(description="the Idempotency-Key had been seen: nothing new was done")


class DeploymentList(BaseModel):
    deployments: list[Deployment] = Field(description="newest first")
