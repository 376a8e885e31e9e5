"""Conversions between the autoscaler's REST models and bay.v1.autoscale (both ways for a policy)."""

from __future__ import annotations

from bay.v1 import autoscale_pb2
from google.protobuf import message

from services.gateway import autoscale_models as m
from services.gateway.adapters import _when


def _opt(msg: message.Message, name: str) -> float | None:
    return getattr(msg, name) if msg.HasField(name) else None


def _int(msg: message.Message, name: str) -> int | None:
    return int(getattr(msg, name)) if msg.HasField(name) else None


def metric_to_pb(t: m.MetricTarget) -> autoscale_pb2.MetricTarget:
    out = autoscale_pb2.MetricTarget(
        kind=t.kind, name=t.name, target=t.target, activation=t.activation, per_task=t.per_task
    )
    if t.source is not None and t.source.prometheus is not None:
        p = t.source.prometheus
        out.prometheus.CopyFrom(
            autoscale_pb2.PrometheusSource(
                port_name=p.port_name, path=p.path, metric=p.metric, labels=p.labels
            )
        )
    elif t.source is not None:
        out.pushed = True
    if t.backlog is not None:
        out.backlog.CopyFrom(
            autoscale_pb2.BacklogSource(stream=t.backlog.stream, consumer=t.backlog.consumer)
        )
    return out


def policy_to_pb(group: str, p: m.PolicyRequest) -> autoscale_pb2.AutoscalePolicy:
    """Unset stays unset: the autoscaler fills in its own defaults."""
    return autoscale_pb2.AutoscalePolicy(
        group=group,
        min=p.min,
        max=p.max,
        metrics=[metric_to_pb(t) for t in p.metrics],
        up=autoscale_pb2.UpBehaviour(**p.up.model_dump()),
        down=autoscale_pb2.DownBehaviour(**p.down.model_dump()),
        tolerance=p.tolerance,
    )


def metric_from_pb(t: autoscale_pb2.MetricTarget) -> m.MetricTargetOut:
    which = t.WhichOneof("source")
    source = None
    if which == "prometheus":
        p = t.prometheus
        prom = m.PrometheusSourceOut(
            port_name=p.port_name, path=p.path, metric=p.metric, labels=dict(p.labels)
        )
        source = m.MetricSourceOut(prometheus=prom)
    elif which == "pushed":
        source = m.MetricSourceOut(pushed=True)
    backlog = (
        m.BacklogSourceOut(stream=t.backlog.stream, consumer=t.backlog.consumer)
        if t.HasField("backlog")
        else None
    )
    return m.MetricTargetOut(
        kind=t.kind,
        name=t.name,
        target=t.target,
        activation=t.activation,
        per_task=t.per_task if t.HasField("per_task") else None,
        source=source,
        backlog=backlog,
    )


def policy_from_pb(p: autoscale_pb2.AutoscalePolicy) -> m.Policy:
    return m.Policy(
        group=p.group,
        min=p.min,
        max=p.max,
        metrics=[metric_from_pb(t) for t in p.metrics],
        up=m.UpBehaviourOut(
            window_seconds=_opt(p.up, "window_seconds"),
            stable_window_seconds=_opt(p.up, "stable_window_seconds"),
            panic_threshold=_opt(p.up, "panic_threshold"),
            cooldown_seconds=_opt(p.up, "cooldown_seconds"),
        ),
        down=m.DownBehaviourOut(
            window_seconds=_opt(p.down, "window_seconds"),
            max_percent=_opt(p.down, "max_percent"),
            min_step=_int(p.down, "min_step"),
            cooldown_seconds=_opt(p.down, "cooldown_seconds"),
        ),
        tolerance=_opt(p, "tolerance"),
    )


def policy_reply_from_pb(r: autoscale_pb2.PolicyReply) -> m.PolicyReply:
    return m.PolicyReply(policy=policy_from_pb(r.policy), duplicate=r.duplicate)


def decision_from_pb(d: autoscale_pb2.AutoscaleDecision) -> m.Decision:
    return m.Decision(
        at=_when(d.at),
        from_=getattr(d, "from"),
        to=d.to,
        rule=d.rule,
        reason=d.reason,
        metrics=[
            m.MetricValue(
                name=v.name,
                value=_opt(v, "value"),
                target=v.target,
                recommendation=_int(v, "recommendation"),
                note=v.note,
            )
            for v in d.metrics
        ],
        recommendation=_int(d, "recommendation"),
        need=_opt(d, "need"),
        over_panic=d.over_panic,
        panic=d.panic,
    )


def status_from_pb(s: autoscale_pb2.AutoscaleStatus) -> m.AutoscaleStatus:
    return m.AutoscaleStatus(
        policy=policy_from_pb(s.policy),
        current=s.current,
        ready=s.ready,
        latest=decision_from_pb(s.latest) if s.HasField("latest") else None,
        decisions=[decision_from_pb(d) for d in s.decisions],
        reason=s.reason,
    )
