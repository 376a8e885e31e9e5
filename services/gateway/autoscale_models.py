"""The autoscaler's REST models (bay.v1.AutoscalePolicy and AutoscaleStatus; see routes/autoscale.py):
a policy in, policies and status out. Bounds a request can break on its own are checked here (422
naming the field); what needs the group (a port name, a stream) is the autoscaler's to refuse."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from libs.spec import MAX_INSTANCES
from services.gateway.models import _In

MetricKind = Literal["cpu", "memory", "custom", "backlog"]
METRIC_NAME_RE = r"^[A-Za-z0-9_.-]{1,128}$"


class PrometheusSource(_In):
    port_name: str = Field(min_length=1, max_length=63, description="the task's port to scrape (by name)")
    path: str = Field("", max_length=1024, description='empty: "/metrics"')
    metric: str = Field(min_length=1, max_length=256, description="the metric family (or sample) name")
    labels: dict[str, str] = Field(
        default_factory=dict, description="samples must carry these labels (summed when several match)"
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError(f"must start with /, not {value!r}")
        return value


class MetricSource(_In):
    """Exactly one: ``{"pushed": true}`` (NATS, bay.metric.<group>.<name>) or ``{"prometheus": {...}}``."""

    pushed: bool | None = Field(None, description="true: samples are published on NATS")
    prometheus: PrometheusSource | None = None

    @model_validator(mode="after")
    def _one(self) -> MetricSource:
        if (self.pushed is True) == (self.prometheus is not None):
            raise ValueError('give exactly one of {"pushed": true} or {"prometheus": {...}}')
        return self


class BacklogSource(_In):
    stream: str = Field(min_length=1, max_length=256, description="a JetStream stream")
    consumer: str = Field(min_length=1, max_length=256, description="its durable consumer")


class MetricTarget(_In):
    kind: MetricKind
    name: str = Field(
        "", max_length=128, json_schema_extra={"pattern": f"^$|{METRIC_NAME_RE}"},
        description="unique within the policy; empty: the kind",
    )  # fmt: skip
    target: float = Field(gt=0, le=1e12, description="per task: a fraction for cpu/memory, units otherwise")
    activation: float = Field(0, ge=0, description="group totals only: active at or above this (0: any > 0)")
    per_task: bool | None = Field(None, description="custom: a value per task (null: true) or a group total")
    source: MetricSource | None = Field(None, validate_default=True, description="custom only; null: pushed")
    backlog: BacklogSource | None = Field(None, validate_default=True, description="backlog only (required)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not re.fullmatch(METRIC_NAME_RE, value):
            raise ValueError(f"must be letters, digits, _ . or - (1 to 128), not {value!r}")
        return value

    @field_validator("target")
    @classmethod
    def _fraction(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("kind") in ("cpu", "memory") and value > 1:
            raise ValueError(f"a fraction of the task's {info.data['kind']} (at most 1), not {value:g}")
        return value

    @field_validator("source")
    @classmethod
    def _source_for_custom(cls, value: MetricSource | None, info: ValidationInfo) -> MetricSource | None:
        kind = info.data.get("kind")
        if value is not None and kind != "custom":
            raise ValueError(f"a source is for kind custom, not {kind}")
        return value

    @field_validator("backlog")
    @classmethod
    def _backlog_for_backlog(cls, value: BacklogSource | None, info: ValidationInfo) -> BacklogSource | None:
        kind = info.data.get("kind")
        if kind == "backlog" and value is None:
            raise ValueError("kind backlog needs {stream, consumer}")
        if value is not None and kind != "backlog":
            raise ValueError(f"backlog is for kind backlog, not {kind}")
        return value


class UpBehaviour(_In):
    window_seconds: float | None = Field(None, ge=0, le=3600, description="a rise must hold this long (6)")
    stable_window_seconds: float | None = Field(
        None, ge=0, le=3600, description="panic lasts this long after its condition (60)"
    )
    panic_threshold: float | None = Field(None, gt=1, le=100, description="panic at this times ready (2)")
    cooldown_seconds: float | None = Field(None, ge=0, le=3600, description="between two steps up (0)")


class DownBehaviour(_In):
    window_seconds: float | None = Field(
        None, ge=0, le=86400, description="the highest recommendation of this window wins (300)"
    )
    max_percent: float | None = Field(None, gt=0, le=100, description="at most this share per step (25)")
    min_step: int | None = Field(None, ge=1, le=MAX_INSTANCES, description="at least this many per step (1)")
    cooldown_seconds: float | None = Field(None, ge=0, le=86400, description="between two steps down (15)")


class PolicyRequest(_In):
    """A group's autoscaling policy: its bounds, what to measure against which targets, and how fast
    to go up and down. Unset (null) behaviours take the autoscaler's defaults."""

    min: int = Field(ge=0, le=MAX_INSTANCES, description="never fewer instances")
    max: int = Field(ge=1, le=MAX_INSTANCES, description="never more instances")
    metrics: list[MetricTarget] = Field(min_length=1, max_length=32)
    up: UpBehaviour = Field(default_factory=UpBehaviour)
    down: DownBehaviour = Field(default_factory=DownBehaviour)
    tolerance: float | None = Field(None, ge=0, lt=1, description="no change within |value/target - 1| <= it")
    group: str = Field("", max_length=63, description="may be left out; if given, the path's name")
    reason: str = Field("", max_length=1024, description="kept in the autoscaler's event")

    @field_validator("max")
    @classmethod
    def _max_over_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if low is not None and value < low:
            raise ValueError(f"must be at least min ({low}), not {value}")
        return value

    @field_validator("metrics")
    @classmethod
    def _unique_names(cls, metrics: list[MetricTarget]) -> list[MetricTarget]:
        names = [m.name or m.kind for m in metrics]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"names must be unique (a name defaults to its kind): {', '.join(twice)}")
        return metrics


# ---- out: the policy as the autoscaler holds it (its own rules, not judged again here) ----


class PrometheusSourceOut(BaseModel):
    port_name: str
    path: str
    metric: str
    labels: dict[str, str]


class MetricSourceOut(BaseModel):
    pushed: bool | None = None
    prometheus: PrometheusSourceOut | None = None


class BacklogSourceOut(BaseModel):
    stream: str
    consumer: str


class MetricTargetOut(BaseModel):
    kind: str
    name: str
    target: float
    activation: float
    per_task: bool | None
    source: MetricSourceOut | None
    backlog: BacklogSourceOut | None


class UpBehaviourOut(BaseModel):
    window_seconds: float | None
    stable_window_seconds: float | None
    panic_threshold: float | None
    cooldown_seconds: float | None


class DownBehaviourOut(BaseModel):
    window_seconds: float | None
    max_percent: float | None
    min_step: int | None
    cooldown_seconds: float | None


class Policy(BaseModel):
    """A group's policy; null behaviours: the autoscaler's defaults."""

    group: str
    min: int
    max: int
    metrics: list[MetricTargetOut]
    up: UpBehaviourOut
    down: DownBehaviourOut
    tolerance: float | None


class PolicyReply(BaseModel):
    policy: Policy
    duplicate: bool = Field(description="the Idempotency-Key had been seen: nothing new was done")


class PolicyList(BaseModel):
    policies: list[Policy]


class RemovedReply(BaseModel):
    removed: bool = Field(description="false: the group had no policy (nothing changed)")


class MetricValue(BaseModel):
    name: str
    value: float | None = Field(description="null: no data")
    target: float
    recommendation: int | None = Field(description="the instances this metric asks for; null: no data")
    note: str


class Decision(BaseModel):
    at: datetime | None
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    rule: str = Field(description='e.g. "proportional cpu", "panic", "step limit", "hold"')
    reason: str
    metrics: list[MetricValue]
    recommendation: int | None = Field(description="what the metrics asked for, before stabilisation")
    need: float | None = Field(description="the load, in tasks")
    over_panic: bool
    panic: bool

    model_config = {"populate_by_name": True}


class AutoscaleStatus(BaseModel):
    policy: Policy
    current: int = Field(description="the group's instance count")
    ready: int
    latest: Decision | None = Field(description="the latest evaluation (values against targets)")
    decisions: list[Decision] = Field(description="the last decisions that changed the count, newest first")
    reason: str = Field(description="why nothing happens now")
