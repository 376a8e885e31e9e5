"""REST shapes of a group's past: its state at a point of the log (time travel) and its charts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.gateway.models import Group, Task


class StepAt(BaseModel):
    name: str
    state: str = Field(description="pending, running, done, failed or skipped")
    message: str


class DeploymentAt(BaseModel):
    """The group's latest deployment at the point, as the deployer's events had it then."""

    id: str
    state: str = Field(description="running, paused, succeeded, failed, aborted, rolled_back, superseded")
    strategy: str
    from_version: int
    to_version: int
    steps: list[StepAt]
    current_step: int
    reason: str
    created: datetime
    updated: datetime


class PointReached(BaseModel):
    at_sequence: int = Field(description="the group's last event at or before the point asked for")
    at_time: datetime = Field(description="when that event happened")


class GroupAt(Group, PointReached):
    """``GET /v1/groups/{name}?at=``: the group as it was, and the point reached."""

    instances: int = Field(description="its instance count then (also in spec.instances)")
    deployment_id: str = Field(description="the deployment that had set its targets last; empty: none")
    deployment: DeploymentAt | None = Field(description="its latest deployment then; null: none yet")


class GroupTasksAt(PointReached):
    """``GET /v1/groups/{name}/tasks?at=``: its tasks as they were (ended ones the fold still kept
    included: their state says so), oldest launch first."""

    group: str
    cluster: str
    ready: int = Field(description="tasks serving then (the readiness rule)")
    desired: int
    tasks: list[Task]


class ReadySample(BaseModel):
    time: datetime
    sequence: int
    ready: int
    desired: int


class UsageSample(BaseModel):
    time: datetime
    cpu: float | None = Field(description="mean over its tasks of the cpu used / cpus asked for; null: none")
    mem: float | None = Field(description="mean over its tasks of the memory used / limit; null: none")
    tasks: int = Field(description="tasks in the sample")


class GroupCharts(BaseModel):
    """``GET /v1/groups/{name}/charts``: the last ``minutes`` of the group."""

    group: str
    since: datetime
    ready: list[ReadySample] = Field(
        description="from the log: the state at `since`, then every change of ready or desired"
    )
    usage: list[UsageSample] = Field(
        description="the usage batches its schedulers published, as the gateway received them since "
        "it started (kept for BAY_GATEWAY_USAGE_KEEP_SECONDS)"
    )
