"""Conversion between the REST shapes (``models``) and the wire types of the registry, the schedulers
and the DNS service (``bay.v1``). Unix-seconds times become datetimes (UTC), as every time in the
REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bay.v1 import deploy_pb2, dns_pb2, group_pb2, registry_pb2, scheduler_pb2, task_pb2
from google.protobuf import message, timestamp_pb2

from libs.spec_pb import trusted_spec_from_pb
from libs.views import deployments as deployment_rules
from libs.views.groups import Group
from services.gateway import deploy_models, models


def _time(ts: timestamp_pb2.Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9, tz=UTC)


def _unix(seconds: float) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else None


def group_from_pb(msg: group_pb2.Group) -> models.Group:
    # the spec model adds every default, so a client reading a group sees the whole effective
    # spec and can send it back as it is (field-by-field conversion: lists of 1,000 groups are common)
    return models.Group(
        spec=trusted_spec_from_pb(msg.spec),
        version=msg.version,
        aggregate_version=msg.aggregate_version,
        created=_time(msg.created),
        updated=_time(msg.updated),
        deleted=msg.deleted,
        targets=[
            models.GroupTarget(
                version=t.version,
                build=t.spec.build,
                instances=t.instances,
                in_service=t.in_service,
                weight=t.weight if t.HasField("weight") else None,
            )
            for t in msg.targets
        ],
    )


def group_from_view(g: Group) -> models.Group:
    """A group as the shared fold holds it (time travel), in the REST shape ``group_from_pb`` gives."""
    targets = [
        models.GroupTarget(
            version=t.version, build=t.spec.build or "", instances=t.instances, in_service=t.in_service,
            weight=t.weight,
        )
        for t in g.targets
    ]  # fmt: skip
    return models.Group(
        spec=g.current_spec(), version=g.version, aggregate_version=g.aggregate_version,
        created=datetime.fromtimestamp(g.created, tz=UTC), updated=datetime.fromtimestamp(g.updated, tz=UTC),
        deleted=g.deleted, targets=targets,
    )  # fmt: skip


def reply_from_pb(msg: registry_pb2.GroupReply) -> models.GroupReply:
    return models.GroupReply(group=group_from_pb(msg.group), sequence=msg.sequence, duplicate=msg.duplicate)


def cluster_from_pb(msg: group_pb2.Cluster) -> models.Cluster:
    return models.Cluster(
        name=msg.name,
        backend=msg.backend,
        address=msg.address,
        labels=dict(msg.labels),
        registered=_time(msg.registered),
        scheduler_address=msg.scheduler_address,
    )


def cluster_to_pb(req: models.ClusterRequest) -> group_pb2.Cluster:
    return group_pb2.Cluster(
        name=req.name,
        backend=req.backend,
        address=req.address,
        labels=req.labels,
        scheduler_address=req.scheduler_address,
    )


def build_from_pb(msg: group_pb2.Build) -> models.Build:
    a = msg.artifact
    return models.Build(
        id=msg.id,
        image=msg.image,
        artifact=models.Artifact(uri=a.uri, sha256=a.sha256, extract=a.extract, executable=a.executable)
        if msg.HasField("artifact")
        else None,
        cmd=msg.cmd,
        commit=msg.commit,
        branch=msg.branch,
        built_by=msg.built_by,
        metadata=dict(msg.metadata),
        registered=_time(msg.registered),
    )


def build_to_pb(req: models.BuildRequest) -> group_pb2.Build:
    out = group_pb2.Build(
        id=req.id,
        image=req.image,
        cmd=req.cmd,
        commit=req.commit,
        branch=req.branch,
        built_by=req.built_by,
        metadata=req.metadata,
    )
    if req.artifact is not None:
        a = req.artifact
        out.artifact.CopyFrom(
            group_pb2.Artifact(uri=a.uri, sha256=a.sha256, extract=a.extract, executable=a.executable)
        )
    return out


def task_from_pb(msg: task_pb2.Task) -> models.Task:
    return models.Task(
        id=msg.id,
        group=msg.group,
        group_version=msg.group_version,
        cluster=msg.cluster,
        host_id=msg.host_id,
        hostname=msg.hostname,
        host_address=msg.host_address,
        ports=dict(msg.ports),
        state=msg.state,
        ready=msg.ready,
        healthy=msg.healthy if msg.HasField("healthy") else None,
        health_failures=msg.health_failures,
        launched_at=datetime.fromtimestamp(msg.launched_at, tz=UTC),
        started_at=_unix(msg.started_at),
        updated_at=datetime.fromtimestamp(msg.updated_at, tz=UTC),
        message=msg.message,
        exit_code=msg.exit_code if msg.HasField("exit_code") else None,
        kill_reason=msg.kill_reason,
        cpus=msg.cpus,
        mem=msg.mem,
        disk=msg.disk,
        host_labels=dict(msg.host_labels),
    )


def pending_from_pb(msg: scheduler_pb2.Pending) -> models.Pending:
    return models.Pending(
        count=msg.count,
        reasons=dict(msg.reasons),
        hosts=msg.hosts,
        next_attempt_at=_unix(msg.next_attempt_at),
        backoff_delay=msg.backoff_delay,
        backoff_failures=msg.backoff_failures,
        summary=msg.summary,
    )


def status_from_pb(msg: scheduler_pb2.GroupStatusReply) -> models.GroupStatus:
    return models.GroupStatus(
        group=msg.group,
        cluster=msg.cluster,
        version=msg.version,
        desired=msg.desired,
        staged=msg.staged,
        running=msg.running,
        healthy=msg.healthy,
        unhealthy=msg.unhealthy,
        ready=msg.ready,
        killing=msg.killing,
        has_health_check=msg.has_health_check,
        known=msg.known,
        pending=pending_from_pb(msg.pending),
        sequence=msg.sequence,
        versions=[
            models.VersionStatus(
                version=v.version,
                instances=v.instances,
                running=v.running,
                ready=v.ready,
                in_service=v.in_service,
            )
            for v in msg.versions
        ],
    )


def dns_lookup_from_pb(msg: dns_pb2.DnsLookupReply, service: str, cluster: str) -> models.DnsLookup:
    return models.DnsLookup(
        service=service,
        cluster=cluster,
        zone=msg.zone,
        exists=msg.exists,
        names=list(msg.names),
        records=[
            models.DnsRecord(name=r.name, type=r.type, ttl=r.ttl, data=r.data, task_id=r.task_id)
            for r in msg.records
        ],
        tasks=[
            models.DnsTask(
                id=t.id,
                group=t.group,
                cluster=t.cluster,
                state=t.state,
                answered=t.answered,
                reason=t.reason,
                addresses=list(t.addresses),
                ports=dict(t.ports),
            )
            for t in msg.tasks
        ],
        groups=[
            models.DnsGroup(name=g.name, cluster=g.cluster, share=g.share, health_checked=g.health_checked)
            for g in msg.groups
        ],
    )


def dns_stats_from_pb(msg: dns_pb2.DnsStatsReply) -> models.DnsStats:
    return models.DnsStats(
        zone=msg.zone,
        ttl=msg.ttl,
        services=msg.services,
        groups=msg.groups,
        tasks=msg.tasks,
        ready_tasks=msg.ready_tasks,
        sequence=msg.sequence,
        queries=msg.queries,
        cache_hits=msg.cache_hits,
        cached_answers=msg.cached_answers,
        forwarded=msg.forwarded,
        refused=msg.refused,
        formerr=msg.formerr,
        upstreams=list(msg.upstreams),
    )


# ---- deployments ----

#: a deployment in one of these states is over (the stream of its progress ends)


def _when(ts: timestamp_pb2.Timestamp) -> datetime | None:
    return _time(ts) if ts.seconds or ts.nanos else None


def _opt(msg: message.Message, name: str) -> float | None:
    return getattr(msg, name) if msg.HasField(name) else None


def canary_step_to_pb(step: deploy_models.CanaryStep) -> deploy_pb2.CanaryStep:
    if step.set_share is not None:
        return deploy_pb2.CanaryStep(set_share=step.set_share)
    if step.set_weight is not None:
        return deploy_pb2.CanaryStep(set_weight=step.set_weight)
    if step.pause is not None:
        return deploy_pb2.CanaryStep(pause=deploy_pb2.PauseStep(seconds=step.pause.seconds))
    assert step.analysis is not None  # the model holds exactly one
    a = step.analysis
    return deploy_pb2.CanaryStep(
        analysis=deploy_pb2.AnalysisStep(
            seconds=a.seconds,
            thresholds=[deploy_pb2.Threshold(metric=t.metric, op=t.op, value=t.value) for t in a.thresholds],
            no_data=a.no_data,
        )
    )


def strategy_to_pb(s: deploy_models.Strategy) -> deploy_pb2.Strategy:
    return deploy_pb2.Strategy(
        kind=s.kind or "",
        minimum_health_capacity=s.minimum_health_capacity,
        maximum_over_capacity=s.maximum_over_capacity,
        steps=[canary_step_to_pb(step) for step in s.steps],
        min_ready_seconds=s.min_ready_seconds,
        progress_deadline_seconds=s.progress_deadline_seconds,
        scale_down_delay_seconds=s.scale_down_delay_seconds,
        no_auto_rollback=s.no_auto_rollback,
        auto_promote=s.auto_promote,
    )


def canary_step_from_pb(p: deploy_pb2.CanaryStep) -> dict[str, Any]:
    which = p.WhichOneof("step")
    if which == "pause":
        return {"pause": {"seconds": _opt(p.pause, "seconds")}}
    if which == "analysis":
        a = p.analysis
        thresholds = [{"metric": t.metric, "op": t.op, "value": t.value} for t in a.thresholds]
        return {"analysis": {"seconds": a.seconds, "thresholds": thresholds, "no_data": a.no_data or "wait"}}
    return {which: getattr(p, which)} if which else {}


def strategy_from_pb(p: deploy_pb2.Strategy) -> deploy_models.StrategyOut:
    return deploy_models.StrategyOut(
        kind=p.kind or "rolling",
        minimum_health_capacity=_opt(p, "minimum_health_capacity"),
        maximum_over_capacity=_opt(p, "maximum_over_capacity"),
        steps=[canary_step_from_pb(s) for s in p.steps],
        min_ready_seconds=_opt(p, "min_ready_seconds"),
        progress_deadline_seconds=_opt(p, "progress_deadline_seconds"),
        scale_down_delay_seconds=_opt(p, "scale_down_delay_seconds"),
        no_auto_rollback=p.no_auto_rollback,
        auto_promote=p.auto_promote,
    )


def deployment_from_pb(d: deploy_pb2.Deployment) -> deploy_models.Deployment:
    return deploy_models.Deployment(
        id=d.id,
        group=d.group,
        state=d.state,
        strategy=strategy_from_pb(d.strategy),
        from_version=d.from_version,
        to_version=d.to_version,
        from_build=d.from_build,
        to_build=d.to_build,
        from_cluster=d.from_cluster,
        to_cluster=d.to_cluster,
        steps=[
            deploy_models.DeploymentStep(
                name=s.name,
                state=s.state,
                started=_when(s.started),
                finished=_when(s.finished),
                message=s.message,
            )
            for s in d.steps
        ],
        current_step=d.current_step,
        reason=d.reason,
        actor=d.actor,
        created=_time(d.created),
        updated=_time(d.updated),
        paused_seconds=d.paused_seconds,
        instances=d.instances,
        new_ready=d.new_ready,
        new_running=d.new_running,
        old_running=d.old_running,
        min_ready=d.min_ready,
        max_running=d.max_running,
        aggregate_version=d.aggregate_version,
        rolling_back=d.rolling_back,
        ended=d.state in deployment_rules.ENDED and not d.rolling_back,  # the shared fold's rule
    )


def deployment_reply_from_pb(r: deploy_pb2.DeploymentReply) -> deploy_models.DeploymentReply:
    return deploy_models.DeploymentReply(deployment=deployment_from_pb(r.deployment), duplicate=r.duplicate)
