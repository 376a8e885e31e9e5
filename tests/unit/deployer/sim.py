"""A simulated cluster for the deployer's pure plan: a scheduler that runs exactly the targets
(adversarial: it stops ready tasks first), tasks that become ready after a delay (or crash), and the
registry's fold of the deployer's commands. No I/O, no sleeps: a tick is one simulated second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from libs.events import model as m
from libs.events.model import TaskState, VersionTarget
from libs.spec import GroupSpec
from libs.views import groups as gv
from libs.views.deployments import Deployment, DeploymentsView
from libs.views.platform import PlatformView
from services.deployer.domain import counts as dc
from services.deployer.domain.analysis import MetricSource, NoMetrics
from services.deployer.domain.bounds import bounds
from services.deployer.domain.deployment import Command, decide
from services.deployer.domain.plan import Inputs, Plan, plan

T0 = 1_000_000.0


def spec(name: str = "web", cmd: str = "v1", instances: int = 4, **kw: object) -> GroupSpec:
    return GroupSpec(name=name, cmd=cmd, instances=instances, **kw)  # type: ignore[arg-type]


@dataclass
class Sim:
    group_spec: GroupSpec
    start_delay: int = 1  # ticks from launch to ready
    crash: Callable[[int], bool] = lambda version: False  # versions whose tasks crash when started
    now: float = T0
    view: PlatformView = field(default_factory=PlatformView)
    deployments: DeploymentsView = field(default_factory=DeploymentsView)
    specs: dict[int, GroupSpec] = field(default_factory=dict)
    metrics: MetricSource = field(default_factory=NoMetrics)
    dns: frozenset[str] | None = None
    seq: int = 0
    launched: dict[str, float] = field(default_factory=dict)
    dying: set[str] = field(default_factory=set)
    plans: list[Plan] = field(default_factory=list)
    min_ready_seen: int | None = None
    max_running_seen: int = 0
    min_ready_any: int | None = None  # while a deployment is active, its rollback too
    rollouts: list[tuple[VersionTarget, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.view.deployments = self.deployments
        self._group(m.GroupCreated(self.group_spec, 1))
        self.specs[1] = self.group_spec
        for _ in range(self.start_delay + 2):
            self.schedule()
            self.now += 1

    @property
    def group(self) -> gv.Group:
        return self.view.groups[self.group_spec.name]

    def _group(self, event: m.GroupEvent) -> None:
        name = self.group_spec.name
        self.view.groups[name] = gv.apply(self.view.groups.get(name), event, self.now)

    def _task(self, event: m.TaskEvent) -> None:
        self.view.task_view.apply(event)

    # ---- the scheduler ----

    def alive(self, version: int | None = None) -> list[str]:
        return [
            t.id
            for t in self.view.group_tasks(self.group_spec.name)
            if not t.terminal and not t.kill_reason and (version is None or t.group_version == version)
        ]

    def schedule(self) -> None:
        g = self.group
        for tid in sorted(self.dying):
            self._task(m.TaskStatusChanged(tid, TaskState.KILLED, self.now))
        self.dying.clear()
        for t in self.view.group_tasks(g.name):
            if t.state == TaskState.STAGING and self.now - self.launched[t.id] >= self.start_delay:
                if self.crash(t.group_version):
                    self._task(m.TaskStatusChanged(t.id, TaskState.FAILED, self.now, "crashed"))
                else:
                    self._task(m.TaskStatusChanged(t.id, TaskState.RUNNING, self.now))
        targets = {t.version: t for t in g.targets}
        for t in self.view.group_tasks(g.name):
            if not t.terminal and not t.kill_reason and t.group_version not in targets:
                self._kill(t.id)
        for version, target in targets.items():
            alive = self.alive(version)
            ready_first = sorted(alive, key=lambda i: (not self.view.is_ready(self.view.tasks[i]), i))
            for tid in ready_first[: max(0, len(alive) - target.instances)]:
                self._kill(tid)
            for _ in range(max(0, target.instances - len(alive))):
                self.seq += 1
                tid = f"{g.name}.{self.seq:04d}"
                self.launched[tid] = self.now
                self._task(
                    m.TaskLaunched(
                        tid, g.name, version, "h", "h", {}, 0.1, 32, 0, self.now, cluster=target.spec.cluster
                    )
                )
        self.observe()

    def _kill(self, tid: str) -> None:
        self._task(m.TaskKillRequested(tid, "surplus", self.now))
        self.dying.add(tid)

    def observe(self) -> None:
        tasks = self.view.group_tasks(self.group_spec.name)
        ready = sum(1 for t in tasks if self.view.is_ready(t))
        running = sum(1 for t in tasks if not t.terminal)
        d = self.current
        if d is not None and not d.rolling_back:
            self.min_ready_seen = ready if self.min_ready_seen is None else min(self.min_ready_seen, ready)
        if d is not None:
            self.min_ready_any = ready if self.min_ready_any is None else min(self.min_ready_any, ready)
        self.max_running_seen = max(self.max_running_seen, running)

    # ---- the deployer ----

    @property
    def current(self) -> Deployment | None:
        return self.deployments.current(self.group_spec.name)

    @property
    def latest(self) -> Deployment:
        d = self.deployments.latest(self.group_spec.name)
        assert d is not None
        return d

    def command(self, cmd: Command) -> list[m.DeploymentEvent]:
        events = decide(self.deployments, self.group, cmd, self.view.builds, self.view.clusters)
        self._deploy_events(events)
        return events

    def _deploy_events(self, events: list[m.DeploymentEvent] | tuple[m.DeploymentEvent, ...]) -> None:
        for e in events:
            self.deployments.apply_event(e, self.group_spec.name, self.now, "test")

    def update(self, new: GroupSpec) -> None:
        """A user's UpdateGroup (not the deployer's)."""
        version = self.group.version + 1
        self.specs[version] = new
        self._group(m.GroupUpdated(new, version))

    def deployer_step(self) -> Plan | None:
        d = self.current
        if d is None:
            return None
        g = self.group
        inputs = Inputs(
            dc.count(self.view, g.name, d.strategy.min_ready_seconds or 0.0, d.created, self.now),
            self.now,
            self.metrics,
            self.dns,
        )
        p = plan(d, g, inputs)
        self.plans.append(p)
        if p.update_spec is not None:
            self.update(p.update_spec)
        elif p.rollback_to:
            version = g.version + 1
            restored = self.specs[p.rollback_to]
            self.specs[version] = restored
            self._group(m.GroupRolledBack(restored, version, p.rollback_to))
        elif p.targets is not None:
            targets = tuple(
                VersionTarget(t.version, g.spec_of(t.version) if g.target(t.version) else g.spec, t.instances,
                              t.in_service, t.weight)
                for t in p.targets
            )  # fmt: skip
            self._group(m.GroupRolloutChanged(targets, d.id))
            self.rollouts.append(self.group.targets)
        self._deploy_events(p.events)
        return p

    def run(self, ticks: int = 200, until: Callable[[Sim], bool] | None = None) -> None:
        for _ in range(ticks):
            self.deployer_step()
            self.deployer_step()  # a command's event wakes the deployer again within the tick
            self.schedule()
            self.now += 1
            if until is not None and until(self):
                return
            if until is None and self.current is None:
                return

    def bounds(self) -> tuple[int, int]:
        b = bounds(self.group.instances, self.latest.strategy)
        return b.min_ready, b.max_running

    def versions_alive(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for t in self.view.group_tasks(self.group_spec.name):
            if not t.terminal:
                out[t.group_version] = out.get(t.group_version, 0) + 1
        return out
