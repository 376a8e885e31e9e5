"""Time travel over REST: ``?at=SEQ|RFC3339`` on a group and its tasks, answered from the log
(:mod:`libs.views.timetravel`), not from the registry or the scheduler (they know only now)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from libs.errors import FieldViolation, NotFound, ValidationFailed
from libs.eventlog import EventLog
from libs.views import deployments as dv
from libs.views import tasks as tv
from libs.views.timetravel import GroupAt, Point, group_at
from services.gateway import models
from services.gateway.adapters import group_from_view
from services.gateway.audit.writer import MAX_SEQUENCE
from services.gateway.history_models import DeploymentAt, GroupTasksAt, StepAt
from services.gateway.history_models import GroupAt as GroupAtModel
from services.gateway.params import DATE_TIME_RE

AT_DESCRIPTION = (
    "time travel: the state at a past point of the log, a stream sequence (e.g. 1234: after every "
    "event up to it) or a time (RFC 3339, e.g. 2024-05-01T12:00:00Z; without an offset: UTC). A "
    "point past the end is now; one before the group existed is a 404"
)


def parse_at(text: str) -> Point:
    """``at`` as a point; a ValidationFailed naming ``at`` when it is neither form."""
    value = text.strip()
    if value.isdigit() and len(value) <= len(str(MAX_SEQUENCE)) and 1 <= int(value) <= MAX_SEQUENCE:
        return Point(sequence=int(value))
    if re.fullmatch(DATE_TIME_RE, value):
        try:
            when = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return Point(time=when.timestamp())
    raise ValidationFailed(
        [
            FieldViolation(
                "at",
                f"must be an event's stream sequence (1 or more) or a time such as "
                f"2024-05-01T12:00:00Z, not {text[:100]!r}",
            )
        ]
    )


def _say(point: Point) -> str:
    if point.sequence is not None:
        return f"sequence {point.sequence}"
    assert point.time is not None
    return datetime.fromtimestamp(point.time, tz=UTC).isoformat().replace("+00:00", "Z")


async def resolve(log: EventLog, name: str, at: str) -> GroupAt:
    """The group's state at ``at``; NotFound when it did not exist yet then."""
    point = parse_at(at)
    state = await group_at(log, name, point)
    if state.group is None:
        raise NotFound(
            f"group {name!r} did not exist at {_say(point)}",
            hint="its first event is in `GET /v1/groups/{name}/history`; a later point shows it",
        )
    return state


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _maybe(seconds: float | None) -> datetime | None:
    return _when(seconds) if seconds else None


def deployment_at(d: dv.Deployment) -> DeploymentAt:
    return DeploymentAt(
        id=d.id,
        state=d.state,
        strategy=d.strategy.kind or "rolling",
        from_version=d.from_version,
        to_version=d.to_version,
        steps=[StepAt(name=s.name, state=s.state, message=s.message) for s in d.steps],
        current_step=d.current_step,
        reason=d.reason,
        created=_when(d.created),
        updated=_when(d.updated),
    )


def group_model(state: GroupAt) -> GroupAtModel:
    g = state.group
    assert g is not None  # resolve() said so
    latest = state.view.deployments.latest(state.name)
    return GroupAtModel(
        **group_from_view(g).model_dump(),
        instances=g.instances,
        deployment_id=g.deployment,
        deployment=deployment_at(latest) if latest is not None else None,
        at_sequence=state.sequence,
        at_time=_when(state.time),
    )


def task_model(t: tv.Task, ready: bool) -> models.Task:
    return models.Task(
        id=t.id,
        group=t.group,
        group_version=t.group_version,
        cluster=t.cluster,
        host_id=t.host_id,
        hostname=t.hostname,
        host_address=t.host_address,
        ports=dict(t.ports),
        state=t.state.value,
        ready=ready,
        healthy=t.healthy,
        health_failures=t.health_failures,
        launched_at=_when(t.launched_at),
        started_at=_maybe(t.started_at),
        updated_at=_when(t.updated_at),
        message=t.message,
        exit_code=t.exit_code,
        kill_reason=t.kill_reason,
        cpus=t.cpus,
        mem=t.mem,
        disk=t.disk,
        host_labels=dict(t.host_labels),
    )


def tasks_model(state: GroupAt) -> GroupTasksAt:
    g = state.group
    assert g is not None
    view = state.view
    tasks = [task_model(t, view.is_ready(t)) for t in state.tasks()]
    return GroupTasksAt(
        group=state.name,
        cluster=g.cluster,
        ready=sum(1 for t in tasks if t.ready),
        desired=0 if g.deleted else g.instances,
        tasks=tasks,
        at_sequence=state.sequence,
        at_time=_when(state.time),
    )
