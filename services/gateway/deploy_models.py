"""The deployer's REST models (bay.v1.Deployment; see routes/deployments.py): requests in, deployments
out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from services.gateway.models import _In

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
        description="over: succeeded, rolled back after a failure, aborted (and rolled back), superseded, "
        "or failed without a rollback"
    )


class DeploymentReply(BaseModel):
    deployment: Deployment
    duplicate: bool = Field(description="the Idempotency-Key had been seen: nothing new was done")


class DeploymentList(BaseModel):
    deployments: list[Deployment] = Field(description="newest first")
