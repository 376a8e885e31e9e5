"""Request and response shapes of the REST API (the wire types stay in ``bay.v1``; see adapters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class VersionStatus(BaseModel):
    """One spec version's tasks in the cluster (a deployment runs several)."""

    version: int
    instances: int = Field(description="its target here; 0: no target (its tasks are being stopped)")
    running: int
    ready: int
    in_service: bool = Field(description="its tasks answer under the service name")


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
    versions: list[VersionStatus] = Field(
        default_factory=list, description="per spec version, oldest first: targets and versions with tasks"
    )


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
    autoscaler: bool = Field(
        False, description="the autoscaler answering (BAY_AUTOSCALER_ADDR); informative, like schedulers"
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
