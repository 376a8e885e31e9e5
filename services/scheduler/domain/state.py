"""The scheduler's state: the shared view of the log (:class:`libs.views.PlatformView`) seen from one
cluster, plus what is the scheduler's own.

Groups, builds and clusters are the shared fold's; the cluster's tasks too (the last ``KEEP_ENDED``
ended ones per group stay, so ``bay tasks --all`` can say how they ended). The scheduler's own: launch
backoff and placement failures from this cluster's ``sched`` events, the Mesos framework id from its
``framework`` event, and the version of each of those aggregates (the next event's is one more). A
group that moves to another cluster is no longer this cluster's, so its tasks become orphans and are
killed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from libs.events import Event, subjects
from libs.events import model as m
from libs.views import Group, PlatformView, Task
from services.scheduler.domain import backoff as bo
from services.scheduler.domain.builds import runnable
from services.scheduler.domain.reconcile import Desired


class SchedulerState(PlatformView):
    def __init__(self, cluster: str) -> None:
        super().__init__(cluster)
        self.backoff: dict[str, bo.GroupBackoff] = {}
        self.pending: dict[str, m.PlacementFailed] = {}  # group -> last placement failure (count 0: none)
        self.framework_id = ""
        self.versions: dict[str, int] = {}  # sched and framework subjects -> their aggregate's version
        self._sched_prefix = subjects.sched_prefix(cluster)
        self._framework_subject = subjects.framework(cluster)
        # told the group an event touched (None: many) and whether it may change what the scheduler
        # decides (a task starting does not; a task ending does): the service wakes its loop for
        # the latter and its status watchers for both
        self._listeners: list[Callable[[str | None, bool], None]] = []
        # told every task change (before, after) from when they are hooked (metrics: once live)
        self.task_observers: list[Callable[[Task | None, Task], None]] = []

    def listen(self, listener: Callable[[str | None, bool], None]) -> Callable[[], None]:
        """Call ``listener(group, decisive)`` on every change from now on; returns how to stop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def on_change(self, group: str | None, decisive: bool) -> None:
        for listener in self._listeners:
            listener(group, decisive)

    def folded(self) -> tuple[object, ...]:
        return (*super().folded(), self.backoff, self.pending, self.framework_id, self.versions)

    # ---- queries ----

    def group(self, name: str) -> Group | None:
        """A live group that runs (or is to run) here: its current spec or a version target is on
        this cluster (a group moving between clusters is both clusters')."""
        g = self.groups.get(name)
        return g if g is not None and not g.deleted and self._here(g) else None

    def _here(self, g: Group) -> bool:
        cluster = self.cluster
        return g.spec.cluster == cluster or any(t.spec.cluster == cluster for t in g.targets)

    def mine(self) -> list[Group]:
        return [g for g in self.groups.values() if not g.deleted and self._here(g)]

    def desired(self) -> dict[str, Desired]:
        """What ``decide`` needs: each group's version targets on this cluster, each with a runnable
        spec (a build resolved to its image or artifact), the newest version first."""
        out: dict[str, Desired] = {}
        cluster = self.cluster
        for g in self.mine():
            wants = []
            for t in sorted(g.targets, key=lambda t: -t.version):
                if t.spec.cluster != cluster:
                    continue
                run = runnable(t.spec, self.builds)
                if run is None:
                    continue  # the registry checks builds exist; a missing one is not runnable here
                wants.append(Desired(run.spec, t.version, t.instances, run.fetch))
            if wants:
                out[g.name] = replace(wants[0], others=tuple(wants[1:]))
        return out

    def version_of(self, subject: str) -> int:
        """The last version of a sched or framework aggregate of this cluster (0: none yet)."""
        return self.versions.get(subject, 0)

    # ---- folding what is the scheduler's own ----

    def on_group(self, before: Group | None, after: Group) -> None:
        was = before is not None and not before.deleted and self._here(before)
        now = not after.deleted and self._here(after)
        if not (was or now):
            return
        if after.deleted:
            self.pending.pop(after.name, None)
            self.backoff.pop(after.name, None)
        self.on_change(after.name, True)

    def on_task(self, before: Task | None, after: Task, ev: Event) -> None:
        for observe in self.task_observers:
            observe(before, after)
        self.on_change(
            after.group,
            before is None or before.active != after.active or after.terminal != before.terminal,
        )

    def on_catalog(self, data: m.ClusterRegistered | m.BuildRegistered) -> None:
        self.on_change(None, True)

    def on_other(self, ev: Event) -> None:
        subject = ev.subject
        data = ev.data
        if subject.startswith(self._sched_prefix):
            self.versions[subject] = ev.envelope.aggregate_version
            if isinstance(data, m.PlacementFailed):
                self.pending[data.group] = data
                self.on_change(data.group, False)
            elif isinstance(data, m.GroupBackoffChanged):
                self.backoff[data.group] = bo.apply(self.backoff.get(data.group), data)
                self.on_change(data.group, True)
        elif subject == self._framework_subject and isinstance(data, m.FrameworkRegistered):
            self.versions[subject] = ev.envelope.aggregate_version
            self.framework_id = data.framework_id
