"""A live view of the platform: groups, clusters and builds, and the tasks of one cluster or all.

This is what a reader of the log builds on (the scheduler, DNS, the deployer, the autoscaler, the UI):

    view = PlatformView()                       # or PlatformView(cluster="local") for one cluster
    projection = Projection(name="mine", log=event_log, initial=PlatformView, apply=PlatformView.fold)
    await projection.start()                    # replayed, then followed live
    projection.state.groups["web"].instances, projection.state.ready_tasks("web")

(:func:`libs.views.live.open_view` does those lines.) ``fold`` decodes each record once through
:mod:`libs.events`; an event it cannot decode or apply is skipped, counted in ``skipped`` (the last
one's sequence in ``last_skipped``) and logged once per kind, and folding goes on. Deployments (the deployer's
events) are in ``view.deployments`` (:mod:`libs.views.deployments`). Subclasses react to
changes through the ``on_*`` hooks and may fold events of their own in ``on_other``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Self

from libs.eventlog.port import Record
from libs.events import Event, UndecodableEvent, decode, subjects
from libs.events import model as m
from libs.views import deployments as dv
from libs.views import groups as gv
from libs.views import tasks as tv
from libs.views.groups import Cause, Group

log = logging.getLogger("bay.views")


def cause_of(ev: Event) -> Cause:
    return Cause(ev.envelope.event_id, ev.envelope.correlation_id, ev.traceparent)


class PlatformView:
    #: keep each aggregate's last event (what a reader acting on it names as its cause); a reader
    #: that acts on nothing (the registry) spares itself the work
    tracks_causes = True

    def __init__(self, cluster: str | None = None, *, keep_ended: int = tv.KEEP_ENDED) -> None:
        self.cluster = cluster  # None: every cluster's tasks
        self.groups: dict[str, Group] = {}  # every group the log has seen, tombstones too
        self.clusters: dict[str, m.Cluster] = {}
        self.builds: dict[str, m.Build] = {}
        self.task_view = tv.TasksView(cluster, keep_ended)
        # not in folded(): snapshots of a view (the scheduler's) do not hold deployments, so a view
        # restored from one knows only the deployments folded after it; a reader of deployments
        # (the deployer, the gateway) replays the log without snapshots
        self.deployments = dv.DeploymentsView()
        self.tasks = self.task_view.tasks
        self.skipped = 0  # events that could not be decoded or applied
        self.last_skipped = 0  # the stream sequence of the last of them
        self._said: set[str] = set()
        self._task_prefix = subjects.task_prefix(cluster) if cluster else subjects.TASK_PREFIX

    def folded(self) -> tuple[object, ...]:
        """What the fold holds, for comparing two views (a snapshot restored against a replay)."""
        tv = self.task_view
        return (self.groups, self.clusters, self.builds, tv.tasks, tv.by_group, tv.ended)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.folded() == other.folded()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    # ---- hooks (no-ops here) ----

    def on_group(self, before: Group | None, after: Group) -> None:
        """A group event was folded (``after.deleted``: it was deleted)."""

    def on_task(self, before: tv.Task | None, after: tv.Task, ev: Event) -> None:
        """A task event of this view's cluster(s) was folded."""

    def on_catalog(self, data: m.ClusterRegistered | m.BuildRegistered) -> None:
        """A cluster or build was registered."""

    def on_deployment(self, before: dv.Deployment | None, after: dv.Deployment, ev: Event) -> None:
        """A deployment event was folded (``view.deployments`` holds them all)."""

    def on_other(self, ev: Event) -> None:
        """An event that is not a group, cluster, build or (this view's) task event."""

    # ---- queries ----

    def live_group(self, name: str) -> Group | None:
        g = self.groups.get(name)
        return g if g is not None and not g.deleted else None

    def health_checked(self, group: str, version: int | None = None) -> bool:
        """Whether the group's tasks (of ``version``: the spec that version runs) have a check."""
        g = self.groups.get(group)
        if g is None or g.deleted:
            return False
        return g.health_checked if version is None else g.checked(version)

    def is_ready(self, task: tv.Task) -> bool:
        return tv.ready(task, self.health_checked(task.group, task.group_version))

    def why_not_ready(self, task: tv.Task) -> str:
        return tv.why_not_ready(task, self.health_checked(task.group, task.group_version))

    def ready_since(self, task: tv.Task) -> float | None:
        """Since when the task has been ready without a break (None: not ready)."""
        checked = self.health_checked(task.group, task.group_version)
        return tv.ready_since(task, checked)

    def ready_times(self, tasks: Iterable[tv.Task]) -> dict[str, float]:
        """Since when each of ``tasks`` is ready, by id; those not ready are left out."""
        return {t.id: at for t in tasks if (at := self.ready_since(t)) is not None}

    def group_tasks(self, group: str) -> list[tv.Task]:
        return self.task_view.of_group(group)

    def ready_tasks(self, group: str) -> list[tv.Task]:
        return [t for t in self.task_view.of_group(group) if self.is_ready(t)]

    # ---- the fold ----

    def fold(self, rec: Record) -> Self:
        subject = rec.subject
        if subject.startswith(subjects.TASK_PREFIX) and not subject.startswith(self._task_prefix):
            return self  # another cluster's task: not decoded at all
        try:
            ev = decode(rec)
            self.apply(ev)
        except (UndecodableEvent, gv.ImpossibleEvent) as exc:
            self.skip(rec, exc)
        return self

    def apply(self, ev: Event) -> None:
        data = ev.data
        if isinstance(data, m.GROUP_EVENTS):
            before = self.groups.get(ev.aggregate_id)
            after = gv.apply(before, data, ev.at, cause_of(ev) if self.tracks_causes else gv.NO_CAUSE)
            self.groups[ev.aggregate_id] = after
            self.on_group(before, after)
        elif isinstance(data, m.TASK_EVENTS):
            changed = self.task_view.apply(data, cause_of(ev) if self.tracks_causes else gv.NO_CAUSE)
            if changed is not None:
                self.on_task(changed[0], changed[1], ev)
        elif isinstance(data, m.ClusterRegistered):
            c = data.cluster
            first = self.clusters.get(c.name)  # registered again (another scheduler address): same age
            registered = first.registered if first is not None else ev.at
            self.clusters[c.name] = replace(c, registered=registered)
            self.on_catalog(data)
        elif isinstance(data, m.NothingChanged):
            # it changes nothing; on a group it still counts in the group's aggregate version
            if ev.subject.startswith(subjects.GROUP_PREFIX):
                before = self.groups.get(ev.aggregate_id)
                self.groups[ev.aggregate_id] = gv.recorded(before)
        elif isinstance(data, m.DEPLOYMENT_EVENTS):
            try:
                before_d, after_d = self.deployments.apply(ev)
            except ValueError as exc:
                raise gv.ImpossibleEvent(str(exc)) from exc
            self.on_deployment(before_d, after_d, ev)
        elif isinstance(data, m.BuildRegistered):
            b = data.build
            self.builds[b.id] = replace(b, registered=ev.at)
            self.on_catalog(data)
        else:
            self.on_other(ev)

    def skip(self, rec: Record, why: Exception) -> None:
        """Count an event that cannot be folded; say so once per kind of problem."""
        self.skipped += 1
        self.last_skipped = rec.sequence
        kind = f"{rec.envelope.type}:{type(why).__name__}"
        if kind not in self._said:
            self._said.add(kind)
            log.warning("skipped event at sequence %d on %s: %s", rec.sequence, rec.subject, why)
