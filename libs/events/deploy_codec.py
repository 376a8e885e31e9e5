"""The deployer's events and strategies <-> their protobuf form (``protos/bay/v1/deploy.proto``).

``strategy_from_pb`` / ``strategy_to_pb`` are also what a caller of ``bay.v1.Deployer`` converts with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bay.v1 import deploy_pb2
from google.protobuf import message

from libs.events import model as m
from libs.spec_pb import spec_to_pb, trusted_spec_from_pb


def _opt(p: Any, name: str) -> float | None:
    return getattr(p, name) if p.HasField(name) else None


def analysis_from_pb(p: deploy_pb2.AnalysisStep) -> m.Analysis:
    return m.Analysis(
        p.seconds, tuple(m.Threshold(t.metric, t.op, t.value) for t in p.thresholds), p.no_data or "wait"
    )


def step_from_pb(p: deploy_pb2.CanaryStep) -> m.CanaryStep:
    which = p.WhichOneof("step")
    if which == "set_share":
        return m.CanaryStep("share", p.set_share)
    if which == "set_weight":
        return m.CanaryStep("weight", p.set_weight)
    if which == "pause":
        return m.CanaryStep("pause", _opt(p.pause, "seconds"))
    if which == "analysis":
        return m.CanaryStep("analysis", None, analysis_from_pb(p.analysis))
    raise ValueError("a canary step needs one of set_share, set_weight, pause, analysis")


def step_to_pb(s: m.CanaryStep) -> deploy_pb2.CanaryStep:
    if s.kind == "share":
        return deploy_pb2.CanaryStep(set_share=s.value or 0.0)
    if s.kind == "weight":
        return deploy_pb2.CanaryStep(set_weight=s.value or 0.0)
    if s.kind == "pause":
        pause = deploy_pb2.PauseStep()
        if s.value is not None:
            pause.seconds = s.value
        return deploy_pb2.CanaryStep(pause=pause)
    a = s.analysis or m.Analysis(0.0)
    return deploy_pb2.CanaryStep(
        analysis=deploy_pb2.AnalysisStep(
            seconds=a.seconds,
            thresholds=[deploy_pb2.Threshold(metric=t.metric, op=t.op, value=t.value) for t in a.thresholds],
            no_data=a.no_data,
        )
    )


_OPTIONAL = (
    "minimum_health_capacity",
    "maximum_over_capacity",
    "min_ready_seconds",
    "progress_deadline_seconds",
    "scale_down_delay_seconds",
)


def strategy_from_pb(p: deploy_pb2.Strategy) -> m.Strategy:
    return m.Strategy(
        kind=p.kind or "rolling",
        minimum_health_capacity=_opt(p, "minimum_health_capacity"),
        maximum_over_capacity=_opt(p, "maximum_over_capacity"),
        steps=tuple(step_from_pb(s) for s in p.steps),
        min_ready_seconds=_opt(p, "min_ready_seconds"),
        progress_deadline_seconds=_opt(p, "progress_deadline_seconds"),
        scale_down_delay_seconds=_opt(p, "scale_down_delay_seconds"),
        no_auto_rollback=p.no_auto_rollback,
        auto_promote=p.auto_promote,
    )


def strategy_to_pb(s: m.Strategy) -> deploy_pb2.Strategy:
    out = deploy_pb2.Strategy(
        kind=s.kind,
        steps=[step_to_pb(x) for x in s.steps],
        no_auto_rollback=s.no_auto_rollback,
        auto_promote=s.auto_promote,
    )
    for name in _OPTIONAL:
        value = getattr(s, name)
        if value is not None:
            setattr(out, name, value)
    return out


def deployment_to_pb(event: m.EventData) -> message.Message | None:
    """The payload of a deployment event; None for any other event."""
    match event:
        case m.DeploymentCreated():
            out = deploy_pb2.DeploymentCreated(
                id=event.id,
                strategy=strategy_to_pb(event.strategy),
                from_version=event.from_version,
                from_build=event.from_build,
                from_cluster=event.from_cluster,
                to_spec=spec_to_pb(event.to_spec),
                superseded_previous=event.superseded_previous,
                automatic=event.automatic,
            )
            if event.from_spec is not None:
                out.from_spec.CopyFrom(spec_to_pb(event.from_spec))
            return out
        case m.DeploymentTargetSet(ident, version):
            return deploy_pb2.DeploymentTargetSet(id=ident, to_version=version)
        case m.DeploymentStepStarted(ident, index, name):
            return deploy_pb2.DeploymentStepStarted(id=ident, index=index, name=name)
        case m.DeploymentStepFinished(ident, index, outcome, text):
            return deploy_pb2.DeploymentStepFinished(id=ident, index=index, outcome=outcome, message=text)
        case m.DeploymentPaused(ident, reason):
            return deploy_pb2.DeploymentPaused(id=ident, reason=reason)
        case m.DeploymentResumed(ident):
            return deploy_pb2.DeploymentResumed(id=ident)
        case m.DeploymentPromoted(ident, every):
            return deploy_pb2.DeploymentPromoted(id=ident, all=every)
        case m.DeploymentAborted(ident, reason):
            return deploy_pb2.DeploymentAborted(id=ident, reason=reason)
        case m.DeploymentRolledBack(ident, reason, version):
            return deploy_pb2.DeploymentRolledBack(id=ident, reason=reason, to_version=version)
        case m.DeploymentSucceeded(ident):
            return deploy_pb2.DeploymentSucceeded(id=ident)
        case m.DeploymentFailed(ident, reason):
            return deploy_pb2.DeploymentFailed(id=ident, reason=reason)
        case m.DeploymentSuperseded(ident, by):
            return deploy_pb2.DeploymentSuperseded(id=ident, by=by)
        case m.DeploymentProgressed():
            e = event
            return deploy_pb2.DeploymentProgressed(
                id=e.id, new_ready=e.new_ready, new_running=e.new_running, old_running=e.old_running,
                min_ready=e.min_ready, max_running=e.max_running, instances=e.instances,
            )  # fmt: skip
    return None


def _created(p: Any, ident: str, at: float) -> m.DeploymentCreated:
    return m.DeploymentCreated(
        p.id, strategy_from_pb(p.strategy), p.from_version, p.from_build, p.from_cluster,
        trusted_spec_from_pb(p.to_spec), p.superseded_previous,
        trusted_spec_from_pb(p.from_spec) if p.HasField("from_spec") else None, p.automatic,
    )  # fmt: skip


DEPLOYMENT_PAYLOADS: dict[type[message.Message], Callable[[Any, str, float], m.EventData]] = {
    deploy_pb2.DeploymentCreated: _created,
    deploy_pb2.DeploymentTargetSet: lambda p, i, at: m.DeploymentTargetSet(p.id, p.to_version),
    deploy_pb2.DeploymentStepStarted: lambda p, i, at: m.DeploymentStepStarted(p.id, p.index, p.name),
    deploy_pb2.DeploymentStepFinished: lambda p, i, at: m.DeploymentStepFinished(
        p.id, p.index, p.outcome, p.message
    ),
    deploy_pb2.DeploymentPaused: lambda p, i, at: m.DeploymentPaused(p.id, p.reason),
    deploy_pb2.DeploymentResumed: lambda p, i, at: m.DeploymentResumed(p.id),
    deploy_pb2.DeploymentPromoted: lambda p, i, at: m.DeploymentPromoted(p.id, p.all),
    deploy_pb2.DeploymentAborted: lambda p, i, at: m.DeploymentAborted(p.id, p.reason),
    deploy_pb2.DeploymentRolledBack: lambda p, i, at: m.DeploymentRolledBack(p.id, p.reason, p.to_version),
    deploy_pb2.DeploymentSucceeded: lambda p, i, at: m.DeploymentSucceeded(p.id),
    deploy_pb2.DeploymentFailed: lambda p, i, at: m.DeploymentFailed(p.id, p.reason),
    deploy_pb2.DeploymentSuperseded: lambda p, i, at: m.DeploymentSuperseded(p.id, p.by),
    deploy_pb2.DeploymentProgressed: lambda p, i, at: m.DeploymentProgressed(
        p.id, p.new_ready, p.new_running, p.old_running, p.min_ready, p.max_running, p.instances
    ),
}
