"""A deployment (the shared fold's value) as ``bay.v1.Deployment``."""

from __future__ import annotations

from bay.v1 import deploy_pb2

from libs.events.deploy_codec import strategy_to_pb
from libs.views.deployments import Deployment


def _ts(out: object, seconds: float | None) -> None:
    if seconds:
        out.FromNanoseconds(int(seconds * 1e9))  # type: ignore[attr-defined]


def deployment_to_pb(d: Deployment) -> deploy_pb2.Deployment:
    out = deploy_pb2.Deployment(
        id=d.id, group=d.group, state=d.state, strategy=strategy_to_pb(d.strategy),
        from_version=d.from_version, to_version=d.to_version, from_build=d.from_build,
        to_build=d.to_build, from_cluster=d.from_cluster, to_cluster=d.to_cluster,
        current_step=max(d.current_step, 0), reason=d.reason, actor=d.actor,
        paused_seconds=d.paused_seconds, instances=d.instances, new_ready=d.new_ready,
        new_running=d.new_running, old_running=d.old_running, min_ready=d.min_ready,
        max_running=d.max_running, aggregate_version=d.aggregate_version,
        rolling_back=d.rolling_back, automatic=d.automatic,
    )  # fmt: skip
    _ts(out.created, d.created)
    _ts(out.updated, d.updated)
    for s in d.steps:
        step = out.steps.add(name=s.name, state=s.state, message=s.message)
        _ts(step.started, s.started)
        _ts(step.finished, s.finished)
    return out
