"""The deployer's service layer: commands in (decide, append), and the controller that carries the
deployments out (plan, command the registry, append what happened).

Appends go on ``bay.ev.deploy.<group>`` with the subject's last sequence as the expected one: two
deployers (or a command racing the controller) cannot both write; the loser re-reads and decides
again. Registry commands carry idempotency keys made of the deployment id and the step (the group's
aggregate version the plan was made from): a deployer SIGKILLed after a command and before its
events plans the same command from the same log, and the registry answers it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from libs.errors import BayError, Conflict
from libs.eventlog import EventLog, Projection
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.views.deployments import Deployment
from libs.views.groups import Group, same_run
from services.deployer.domain import counts
from services.deployer.domain.analysis import MetricSource, NoMetrics
from services.deployer.domain.deployment import Command, Deploy, decide
from services.deployer.domain.plan import Inputs, plan
from services.deployer.ports import DnsPort, NoDns, RegistryPort
from services.deployer.service_layer.view import DeployerView

log = logging.getLogger("bay.deployer")

ACTOR = "deployer"
RETRY_SECONDS = 1.0


class Deployer:
    def __init__(
        self,
        event_log: EventLog,
        projection: Projection[DeployerView],
        registry: RegistryPort,
        *,
        clock: Callable[[], float] = time.time,
        metrics: MetricSource | None = None,
        dns: DnsPort | None = None,
    ) -> None:
        self.log = event_log
        self.projection = projection
        self.registry = registry
        self.clock = clock
        self.metrics = metrics or NoMetrics()
        self.dns = dns or NoDns()
        self.wake_at: dict[str, float] = {}

    @property
    def view(self) -> DeployerView:
        return self.projection.state

    # ---- commands ----

    async def command(self, cmd: Command, meta: EventMeta) -> Deployment:
        """Decide and append; the deployment as it is after (Conflict when another writer won twice)."""
        d, _ = await self.command_once(cmd, meta)
        return d

    async def command_once(self, cmd: Command, meta: EventMeta) -> tuple[Deployment, bool]:
        """The same, once per idempotency key: a repeat answers with the deployment the first made
        (and True)."""
        dv = self.view.deployments
        seen = dv.keys.get((cmd.group, meta.idempotency_key)) if meta.idempotency_key else None
        if seen is not None:
            return dv.by_id[seen], True
        for attempt in range(3):
            v = self.view
            events = decide(v.deployments, v.live_group(cmd.group), cmd, v.builds, v.clusters)
            try:
                await self._append(cmd.group, events, meta)
                break
            except Conflict:
                if attempt == 2:
                    raise
                await self.projection.wait_for(await self.log.last_sequence(subjects.deploy(cmd.group)))
        d = self.view.deployments.latest(cmd.group)
        if d is None:
            raise Conflict(f"group {cmd.group!r} has no deployment")
        return d, False

    async def _append(self, group: str, events: Sequence[m.DeploymentEvent], meta: EventMeta) -> None:
        if not events:
            return
        dv = self.view.deployments
        subject = subjects.deploy(group)
        expected = dv.last_sequence.get(group, 0)
        version = dv.aggregate_version.get(group, 0)
        for i, event in enumerate(events):
            env = make_envelope(
                to_pb(event),
                aggregate_type=subjects.DEPLOY,
                aggregate_id=group,
                aggregate_version=version + i + 1,
                meta=meta,
                index=i,
                now=self.clock(),
            )
            meta = meta.caused_by(env.event_id)
            res = await self.log.append(subject, env, expected_last_seq=expected)
            expected = res.sequence
        await self.projection.wait_for(expected)

    # ---- the controller ----

    async def run(self, stop: asyncio.Event) -> None:
        """Look at every group that changed, and at each one whose timer is due, until ``stop``."""
        view = self.view
        view.changed.update(view.groups)  # after a restart: everything once
        while not stop.is_set():
            view = self.view
            view.wake.clear()
            now = self.clock()
            due = {g for g, at in self.wake_at.items() if at <= now}
            todo = view.changed | due
            view.changed = set()
            for name in sorted(todo):
                self.wake_at.pop(name, None)
                try:
                    at = await self.tick(name)
                except BayError as exc:
                    log.warning("group %s: %s; again in %gs", name, exc, RETRY_SECONDS)
                    at = self.clock() + RETRY_SECONDS
                except Exception:
                    log.exception("group %s: controller failed; again in %gs", name, RETRY_SECONDS)
                    at = self.clock() + RETRY_SECONDS
                if at is not None:
                    self.wake_at[name] = at
            if self.view.changed:
                continue
            timeout = min(self.wake_at.values(), default=now + 5.0) - self.clock()
            waiters = [asyncio.ensure_future(self.view.wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=max(0.01, timeout), return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def tick(self, name: str) -> float | None:
        """One look at a group: start a deployment its spec change needs, or move its deployment on.
        Returns when to look again without news (None: at the next change)."""
        view = self.view
        group = view.groups.get(name)
        d = view.deployments.current(name)
        if group is None:
            return None
        meta = EventMeta.command(ACTOR, d.id if d else "")
        if d is None:
            if not group.deleted and _needs_deployment(view, group):
                await self.command(Deploy(name, automatic=True), EventMeta.command(ACTOR))
                return self.clock()
            return None
        if _changed_elsewhere(d, group):
            # a spec change made past the deployment (UpdateGroup, RollbackGroup): the newest wins,
            # from the same stable version, as Marathon's forced update replaces a deployment
            await self.command(Deploy(name, automatic=True, supersede=True), EventMeta.command(ACTOR))
            return self.clock()
        if group.deleted:
            await self._append(name, [m.DeploymentFailed(d.id, "group deleted"),
                                      m.DeploymentRolledBack(d.id, "group deleted", 0)], meta)  # fmt: skip
            return None
        now = self.clock()
        goal = d.to_version
        dns = None
        if d.strategy.kind == "migration" and goal and not d.rolling_back:
            dns = await self.dns.answers(group.service, d.to_cluster)
        inputs = Inputs(
            counts.count(view, name, d.strategy.min_ready_seconds or 0.0, d.created, now),
            now,
            self.metrics,
            dns,
        )
        p = plan(d, group, inputs)
        key = f"deploy/{d.id}/{p.step}"
        events = list(p.events)
        if p.update_spec is not None:
            # the version from the registry's answer, not from the view: a user's update landing
            # between ours and our look at the group must not be taken for ours (a repeat of the
            # key after a crash answers with the first version)
            version = await self.registry.update_group(p.update_spec, key=key)
            events.append(m.DeploymentTargetSet(d.id, version))
        elif p.rollback_to:
            await self.registry.rollback_group(name, p.rollback_to, key=key)
        elif p.targets is not None:
            await self.registry.set_rollout(name, p.targets, deployment=d.id, reason=_reason(d), key=key)
        await self._append(name, events, meta)
        if p.update_spec is not None or p.rollback_to or p.targets is not None:
            # the registry's event wakes us; a command that changed nothing would not: look again
            return min(p.wake_at or now + RETRY_SECONDS, now + RETRY_SECONDS)
        return p.wake_at


def _reason(d: Deployment) -> str:
    if d.rolling_back:
        return f"deployment {d.id}: rolling back"
    step = d.step(d.current_step)
    return f"deployment {d.id}: {step.name}" if step else f"deployment {d.id}"


def _changed_elsewhere(d: Deployment, group: Group) -> bool:
    return (
        not group.deleted
        and not d.rolling_back
        and d.to_version != 0
        and group.version > d.to_version
        and not same_run(group.spec, d.to_spec)
    )


def _needs_deployment(view: DeployerView, group: Group) -> bool:
    """A spec change made elsewhere (UpdateGroup): the group's current spec is not what its targets
    run, and no deployment has dealt with this version yet."""
    if group.settled or not group.targets:
        return False
    last = view.deployments.latest(group.name)
    if last is None:
        return True
    return group.version > max(last.to_version, last.rolled_back_to, last.from_version)
