"""What the overview page shows, in one answer: clusters and hosts with their capacity, and every
group with the parts of its health bar, its build and its latest deployment.

Which groups exist, their builds and deployments come from the gateway's live view of the log
(``backends.view``); how many of a group's tasks are ready, starting, unhealthy or waiting for a
host come from its cluster's scheduler (``ClusterStatus``: its ``GroupStatus`` counts, which apply
the views' readiness rule, and its pending count), so the page never judges readiness itself.
One answer is built at most every ``ttl`` seconds however many pages ask (:class:`OverviewSource`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bay.v1 import scheduler_pb2
from pydantic import BaseModel, Field

from libs.clients import SchedulerPool
from libs.errors import BayError
from libs.views.platform import PlatformView

#: a scheduler that does not answer within this is shown as down (the page must not hang)
ASK_SECONDS = 2.0


class Resource(BaseModel):
    used: float
    free: float


class Host(BaseModel):
    id: str
    hostname: str
    labels: dict[str, str]
    tasks: int = Field(description="live tasks on the host")
    cpus: Resource
    mem: Resource = Field(description="MiB")
    disk: Resource = Field(description="MiB")


class ClusterOverview(BaseModel):
    name: str
    backend: str
    labels: dict[str, str]
    reachable: bool = Field(description="its scheduler answered")
    error: str = Field("", description="why not, when it did not")
    offer_based: bool = Field(False, description="free is the outstanding offers (Mesos)")
    hosts: list[Host]


class Health(BaseModel):
    """The health bar's parts; they do not overlap, so they add up to what the bar draws."""

    desired: int
    ready: int
    unhealthy: int = Field(description="running, failing its health check")
    starting: int = Field(description="launched, not ready yet")
    waiting: int = Field(description="wanted, not launched: no host has room, or a launch backoff")
    over: int = Field(description="live tasks beyond the desired count (a surge, a scale-down)")
    killing: int = Field(description="being stopped (not drawn)")


class DeploymentBrief(BaseModel):
    id: str
    state: str
    to_version: int
    reason: str


class GroupOverview(BaseModel):
    name: str
    cluster: str
    instances: int
    version: int
    build: str = Field(description="the build id, else the image, else the command")
    health: Health
    known: bool = Field(description="its scheduler answered for it")
    pending: str = Field(description="why tasks wait, in one line (the scheduler's)")
    deployment: DeploymentBrief | None = Field(
        description="its latest deployment (a newer one supersedes a failed one)"
    )


class Overview(BaseModel):
    sequence: int = Field(description="the event-log sequence the groups are as of")
    clusters: list[ClusterOverview]
    groups: list[GroupOverview]


def health_of(instances: int, statuses: list[scheduler_pb2.GroupStatusReply]) -> Health:
    """The bar's parts from the schedulers' counts (a group moving between clusters has two).

    Tasks beyond the desired count are ``over``, taken first from those not ready yet, so that the
    parts never count a task twice."""
    if not statuses:
        return Health(desired=instances, ready=0, unhealthy=0, starting=0, waiting=0, over=0, killing=0)
    desired = sum(s.desired for s in statuses)
    ready = sum(s.ready for s in statuses)
    unhealthy = sum(s.unhealthy for s in statuses)
    live = sum(s.staged + s.running for s in statuses)
    starting = max(0, live - ready - unhealthy)
    waiting = sum(s.pending.count for s in statuses)
    over = max(0, live - desired)
    cut = min(starting, over)
    starting -= cut
    rest = over - cut
    cut = min(unhealthy, rest)
    unhealthy -= cut
    ready -= min(ready, rest - cut)
    killing = sum(s.killing for s in statuses)
    return Health(
        desired=desired,
        ready=ready,
        unhealthy=unhealthy,
        starting=starting,
        waiting=waiting,
        over=over,
        killing=killing,
    )


def _host(h: scheduler_pb2.HostCapacity) -> Host:
    return Host(
        id=h.host_id,
        hostname=h.hostname,
        labels=dict(h.labels),
        tasks=h.tasks,
        cpus=Resource(used=round(h.cpus_used, 3), free=round(h.cpus_free, 3)),
        mem=Resource(used=round(h.mem_used, 1), free=round(h.mem_free, 1)),
        disk=Resource(used=round(h.disk_used, 1), free=round(h.disk_free, 1)),
    )


def build_overview(
    view: PlatformView,
    sequence: int,
    answers: dict[str, scheduler_pb2.ClusterStatusReply | BayError],
) -> Overview:
    """The answer from the view and each configured cluster's ``ClusterStatus`` (or its error)."""
    by_group: dict[str, list[scheduler_pb2.GroupStatusReply]] = {}
    clusters = []
    names = sorted(set(view.clusters) | set(answers))
    for name in names:
        registered = view.clusters.get(name)
        answer = answers.get(name)
        reply = answer if isinstance(answer, scheduler_pb2.ClusterStatusReply) else None
        if reply is not None:
            for status in reply.groups:
                if status.known or status.desired or status.running or status.staged:
                    by_group.setdefault(status.group, []).append(status)
        error = answer.message if isinstance(answer, BayError) else ""
        if answer is None:
            error = "the gateway knows no scheduler for this cluster (BAY_SCHEDULERS)"
        clusters.append(
            ClusterOverview(
                name=name,
                backend=registered.backend if registered else "",
                labels=dict(registered.labels) if registered else {},
                reachable=reply is not None,
                error=error,
                offer_based=reply.offer_based if reply is not None else False,
                hosts=[_host(h) for h in reply.hosts] if reply is not None else [],
            )
        )
    groups = []
    for name in sorted(view.groups):
        g = view.live_group(name)
        if g is None:
            continue
        statuses = by_group.get(name, [])
        latest = view.deployments.latest(name)
        spec = g.spec
        groups.append(
            GroupOverview(
                name=name,
                cluster=g.cluster,
                instances=g.instances,
                version=g.version,
                build=spec.build or spec.image or spec.cmd or "",
                health=health_of(g.instances, statuses),
                known=bool(statuses),
                pending="; ".join(s.pending.summary for s in statuses if s.pending.summary),
                deployment=DeploymentBrief(
                    id=latest.id, state=latest.state, to_version=latest.to_version, reason=latest.reason
                )
                if latest is not None
                else None,
            )
        )
    return Overview(sequence=sequence, clusters=clusters, groups=groups)


class OverviewSource:
    """The overview, built at most once every ``ttl`` seconds (and again as soon as the log moved
    on, if ``ttl`` has passed), shared by every request and stream."""

    def __init__(
        self,
        view: Callable[[], tuple[PlatformView, int]],
        *,
        ttl: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self.ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._built: tuple[float, Overview] | None = None

    @staticmethod
    async def _ask(schedulers: SchedulerPool, cluster: str) -> scheduler_pb2.ClusterStatusReply | BayError:
        client = schedulers.of(cluster)
        try:
            return await asyncio.wait_for(client.cluster_status(), ASK_SECONDS)
        except BayError as exc:
            return exc
        except TimeoutError:
            return BayError(f"the scheduler of cluster {cluster!r} did not answer within {ASK_SECONDS:g}s")

    async def get(self, schedulers: SchedulerPool) -> Overview:
        """``schedulers`` carry the asking request's token (any viewer sees the same answer, so a
        cached one serves them all)."""
        async with self._lock:
            now = self._clock()
            if self._built is not None and now - self._built[0] < self.ttl:
                return self._built[1]
            clusters = schedulers.clusters
            replies = await asyncio.gather(*(self._ask(schedulers, c) for c in clusters))
            view, sequence = self._view()
            built = build_overview(view, sequence, dict(zip(clusters, replies, strict=True)))
            self._built = (self._clock(), built)
            return built
