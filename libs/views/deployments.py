"""The one fold of deployments: each group's deployments as the deployer's events say they are.

The deployer decides with it, the gateway shows it, the autoscaler asks it whether a group is being
deployed (``view.current(group)``). Events are on ``bay.ev.deploy.<group>``: one subject per group,
so ``last_sequence[group]`` is what the next append expects, and ``aggregate_version[group]`` counts
the group's deployment events (all its deployments together).

States: ``running``, ``paused``; ended: ``succeeded``, ``failed`` (stays where it failed:
``no_auto_rollback``), ``rolled_back`` (after a failure), ``aborted`` (by a person, then rolled
back), ``superseded``. ``Aborted`` and an auto-rolled-back ``Failed`` set ``rolling_back`` until
``RolledBack``: a deployment is ``active`` while it runs, is paused, or is on its way back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from libs.events import Event
from libs.events import model as m
from libs.spec import GroupSpec

ENDED = frozenset({"succeeded", "failed", "aborted", "rolled_back", "superseded"})


def step_names(strategy: m.Strategy, to_cluster: str = "") -> tuple[str, ...]:
    """The steps a deployment of this strategy goes through, in order."""
    kind = strategy.kind
    if kind == "recreate":
        return ("stop old", "start new")
    if kind == "blue-green":
        return ("start new", "switch", "scale down")
    if kind == "migration":
        return (f"start in {to_cluster}" if to_cluster else "start new", "drain source")
    if kind == "canary":
        return (*(canary_step_name(s) for s in strategy.steps), "promote")
    return ("roll",)


def canary_step_name(s: m.CanaryStep) -> str:
    if s.kind == "share":
        return f"share {(s.value or 0) * 100:g}%"
    if s.kind == "weight":
        return f"weight {s.value or 0:g}%"
    if s.kind == "pause":
        return "pause" if s.value is None else f"pause {s.value:g}s"
    return f"analysis {s.analysis.seconds if s.analysis else 0:g}s"


@dataclass(frozen=True)
class Step:
    name: str
    state: str = "pending"  # pending | running | done | failed | skipped
    started: float | None = None
    finished: float | None = None
    message: str = ""


@dataclass(frozen=True)
class Deployment:
    id: str
    group: str
    strategy: m.Strategy
    from_version: int
    from_build: str
    from_cluster: str
    to_spec: GroupSpec
    from_spec: GroupSpec | None
    created: float
    updated: float
    actor: str = ""
    automatic: bool = False
    to_version: int = 0  # 0: the registry does not hold the new spec yet
    state: str = "running"
    steps: tuple[Step, ...] = ()
    current_step: int = -1  # the step under way (-1: none started yet)
    reason: str = ""
    paused_at: float | None = None
    paused_seconds: float = 0.0
    paused_by_step: bool = False  # a pause step (or a switch) waiting to be promoted
    promoted_step: int = -1  # the step a Promote finished
    promote_all: bool = False
    rolling_back: bool = False
    rolled_back_to: int = 0
    progressed_at: float = 0.0  # the progress deadline counts from here (pauses moved it on)
    new_ready: int = 0
    new_running: int = 0
    old_running: int = 0
    min_ready: int = 0
    max_running: int = 0
    instances: int = 0
    aggregate_version: int = 0

    @property
    def to_build(self) -> str:
        return self.to_spec.build or ""

    @property
    def to_cluster(self) -> str:
        return self.to_spec.cluster

    @property
    def ended(self) -> bool:
        return self.state in ENDED and not self.rolling_back

    @property
    def active(self) -> bool:
        return not self.ended

    @property
    def paused(self) -> bool:
        return self.state == "paused"

    def step(self, index: int) -> Step | None:
        return self.steps[index] if 0 <= index < len(self.steps) else None


def _set_step(d: Deployment, index: int, **changes: object) -> tuple[Step, ...]:
    steps = list(d.steps)
    while len(steps) <= index:
        steps.append(Step(f"step {len(steps)}"))
    steps[index] = replace(steps[index], **changes)  # type: ignore[arg-type]
    return tuple(steps)


def _unpaused(d: Deployment, at: float) -> Deployment:
    if d.paused_at is None:
        return d
    held = max(0.0, at - d.paused_at)
    return replace(
        d,
        state="running" if d.state == "paused" else d.state,
        paused_at=None,
        paused_by_step=False,
        paused_seconds=d.paused_seconds + held,
        progressed_at=d.progressed_at + held,
    )


def apply(
    d: Deployment | None, event: m.DeploymentEvent, at: float, group: str, actor: str = ""
) -> Deployment:
    """Fold one deployment event (``at``: its time) into its deployment."""
    if isinstance(event, m.DeploymentCreated):
        strategy = event.strategy
        names = step_names(strategy, event.to_spec.cluster)
        return Deployment(
            id=event.id, group=group, strategy=strategy, from_version=event.from_version,
            from_build=event.from_build, from_cluster=event.from_cluster, to_spec=event.to_spec,
            from_spec=event.from_spec, created=at, updated=at, actor=actor, automatic=event.automatic,
            steps=tuple(Step(n) for n in names), progressed_at=at,
        )  # fmt: skip
    if d is None:
        raise ValueError(f"{type(event).__name__} for unknown deployment {event.id!r}")
    d = replace(d, updated=at)
    match event:
        case m.DeploymentTargetSet(_, version):
            return replace(d, to_version=version)
        case m.DeploymentStepStarted(_, index, name):
            steps = _set_step(d, index, name=name, state="running", started=at)
            return replace(d, steps=steps, current_step=index, progressed_at=at)
        case m.DeploymentStepFinished(_, index, outcome, text):
            steps = _set_step(d, index, state=outcome, finished=at, message=text)
            return replace(d, steps=steps, progressed_at=at)
        case m.DeploymentPaused(_, reason):
            if d.paused_at is not None:
                return replace(d, reason=reason)
            by_step = reason.startswith("step:")
            return replace(d, state="paused", paused_at=at, reason=reason, paused_by_step=by_step)
        case m.DeploymentResumed():
            by_step = d.paused_by_step
            d = _unpaused(d, at)
            return replace(d, promoted_step=d.current_step) if by_step else d
        case m.DeploymentPromoted(_, every):
            d = _unpaused(d, at)
            return replace(d, promoted_step=d.current_step, promote_all=d.promote_all or every)
        case m.DeploymentAborted(_, reason):
            d = _unpaused(d, at)
            return replace(d, state="aborted", reason=f"aborted: {reason}" if reason else "aborted",
                           rolling_back=True)  # fmt: skip
        case m.DeploymentFailed(_, reason):
            d = _unpaused(d, at)
            back = not d.strategy.no_auto_rollback
            steps = d.steps
            if 0 <= d.current_step < len(steps) and steps[d.current_step].state == "running":
                steps = _set_step(d, d.current_step, state="failed", finished=at, message=reason)
            return replace(d, state="failed", reason=reason, rolling_back=back, steps=steps)
        case m.DeploymentRolledBack(_, reason, version):
            ended = "aborted" if d.state == "aborted" else "rolled_back"  # an abort stays one
            return replace(d, state=ended, rolling_back=False, rolled_back_to=version,
                           reason=reason or d.reason)  # fmt: skip
        case m.DeploymentSucceeded():
            return replace(d, state="succeeded", reason="", paused_at=None)
        case m.DeploymentSuperseded(_, by):
            return replace(d, state="superseded", rolling_back=False, reason=f"superseded by {by}")
        case m.DeploymentProgressed():
            e = event
            moved = e.new_ready > d.new_ready
            return replace(
                d, new_ready=e.new_ready, new_running=e.new_running, old_running=e.old_running,
                min_ready=e.min_ready, max_running=e.max_running, instances=e.instances,
                progressed_at=at if moved and d.paused_at is None else d.progressed_at,
            )  # fmt: skip
    raise TypeError(f"not a deployment event: {event!r}")


class DeploymentsView:
    """Every deployment by id, each group's in order, and each group's subject position."""

    def __init__(self) -> None:
        self.by_id: dict[str, Deployment] = {}
        self.by_group: dict[str, list[str]] = {}
        self.last_sequence: dict[str, int] = {}  # group -> its deploy subject's last sequence
        self.aggregate_version: dict[str, int] = {}  # group -> deployment events of the group
        self.keys: dict[tuple[str, str], str] = {}  # (group, idempotency key) -> the deployment it made

    def of_group(self, group: str) -> list[Deployment]:
        return [self.by_id[i] for i in self.by_group.get(group, ())]

    def current(self, group: str) -> Deployment | None:
        """The group's deployment that is under way (at most one), else None."""
        ids = self.by_group.get(group)
        if not ids:
            return None
        last = self.by_id[ids[-1]]
        return last if last.active else None

    def latest(self, group: str) -> Deployment | None:
        ids = self.by_group.get(group)
        return self.by_id[ids[-1]] if ids else None

    def last_succeeded(self, group: str) -> Deployment | None:
        for d in reversed(self.of_group(group)):
            if d.state == "succeeded":
                return d
        return None

    def next_id(self, group: str) -> str:
        return f"{group}-{len(self.by_group.get(group, ())) + 1}"

    def apply_event(
        self, event: m.DeploymentEvent, group: str, at: float, actor: str = ""
    ) -> tuple[Deployment | None, Deployment]:
        """Fold an event of ``group``'s subject, without its stream position (the domain's tests)."""
        before = self.by_id.get(event.id)
        if before is not None and before.group != group:
            raise ValueError(f"deployment {event.id!r} is not of group {group!r}")
        after = apply(before, event, at, group, actor)
        version = self.aggregate_version.get(group, 0) + 1
        self.aggregate_version[group] = version
        after = replace(after, aggregate_version=version)
        self.by_id[after.id] = after
        if before is None:
            self.by_group.setdefault(group, []).append(after.id)
        return before, after

    def apply(self, ev: Event) -> tuple[Deployment | None, Deployment]:
        data = ev.data
        if not isinstance(data, m.DEPLOYMENT_EVENTS):
            raise TypeError(f"not a deployment event: {data!r}")
        group = ev.aggregate_id
        changed = self.apply_event(data, group, ev.at, ev.envelope.actor)
        self.last_sequence[group] = ev.sequence
        key = ev.envelope.idempotency_key
        if key:
            self.keys.setdefault((group, key), data.id)
        return changed
