"""The scheduler's state: a pure fold of the whole event log, seen from one cluster.

Desired state comes from the registry's group events (groups whose spec names this cluster) and build
events (a group may run a registered build: its image); actual state from this cluster's task events;
launch backoff and placement failures from this cluster's ``sched`` events; the Mesos framework id
from its ``framework`` event. A group that moves to another cluster leaves ``groups`` here, so its
tasks become orphans and are killed.

Ended tasks stay for a while (the last ``KEEP_ENDED`` per group) so that ``bay tasks --all`` can say
how they ended; older ones are dropped in the fold, deterministically, so replay and live agree.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bay.v1 import group_pb2, task_pb2

from libs.eventlog.port import EVENT_SUBJECT_ROOT, Record
from libs.spec import GroupSpec
from libs.spec_pb import trusted_spec_from_pb
from services.scheduler import codec
from services.scheduler.domain import backoff as bo
from services.scheduler.domain import tasks as t
from services.scheduler.domain.health import ready
from services.scheduler.domain.reconcile import Desired

KEEP_ENDED = 10
_GROUP = f"{EVENT_SUBJECT_ROOT}.group."
_BUILD = f"{EVENT_SUBJECT_ROOT}.build."
_CLUSTER = f"{EVENT_SUBJECT_ROOT}.cluster."


@dataclass
class GroupEntry:
    spec: GroupSpec
    version: int
    instances: int


class SchedulerState:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.groups: dict[str, GroupEntry] = {}  # this cluster's live groups
        self.builds: dict[str, str] = {}  # build id -> image
        self.tasks: dict[str, t.Task] = {}
        self.by_group: dict[str, set[str]] = {}  # group -> ids of its tasks in ``tasks``
        self.addresses: dict[str, str] = {}  # task id -> host address
        self.ended: dict[str, deque[str]] = {}  # group -> its ended task ids, oldest first
        self.backoff: dict[str, bo.GroupBackoff] = {}
        self.pending: dict[str, t.PlacementFailed] = {}  # group -> last placement failure (count 0: none)
        self.framework_id = ""
        self.clusters: dict[str, tuple[str, str]] = {}  # registered clusters: name -> (backend, address)
        self._task_prefix, self._sched_prefix, self._framework_subject = codec.cluster_filter(cluster)
        # called with the group an event touched (None: many) and whether it may change what the
        # scheduler decides (a task starting does not; a task ending does); the service wakes its
        # loop for the latter and its status watchers for both
        self.on_change: Callable[[str | None, bool], None] = lambda group, decisive: None

    # ---- queries ----

    def desired(self) -> dict[str, Desired]:
        """What ``decide`` needs: each group with a runnable spec (a build resolved to its image)."""
        out: dict[str, Desired] = {}
        for name, g in self.groups.items():
            spec = g.spec
            if spec.build:
                image = self.builds.get(spec.build)
                if image is None:
                    continue  # the registry checks builds exist; a missing one is not runnable here
                spec = spec.model_copy(update={"image": image, "build": None})
            out[name] = Desired(spec, g.version, g.instances)
        return out

    def group_tasks(self, group: str) -> list[t.Task]:
        tasks = self.tasks
        return [tasks[i] for i in self.by_group.get(group, ())]

    def is_ready(self, task: t.Task) -> bool:
        g = self.groups.get(task.group)
        return ready(task, g is not None and g.spec.health_check is not None)

    # ---- the fold ----

    def fold(self, rec: Record) -> SchedulerState:
        subject = rec.subject
        env = rec.envelope
        if subject.startswith(self._task_prefix) or subject.startswith(self._sched_prefix):
            entry = codec.DECODERS.get(env.type)
            if entry is None:
                return self
            cls, decode = entry
            msg = cls.FromString(env.payload.value)
            at = env.time.seconds + env.time.nanos * 1e-9
            event = decode(env.aggregate_id, at, msg)
            if isinstance(event, t.PlacementFailed):
                self.pending[event.group] = event
                self.on_change(event.group, False)
            elif isinstance(event, t.GroupBackoffChanged):
                self.backoff[event.group] = bo.apply(self.backoff.get(event.group), event)
                self.on_change(event.group, True)
            else:
                self._task_event(event, msg)
        elif subject.startswith(_GROUP):
            self._group_event(env.aggregate_id, env.type, env.payload.value)
        elif subject.startswith(_BUILD):
            if env.type == "BuildRegistered":
                b = group_pb2.BuildRegistered.FromString(env.payload.value).build
                self.builds[b.id] = b.image
                self.on_change(None, True)
        elif subject.startswith(_CLUSTER):
            if env.type == "ClusterRegistered":
                c = group_pb2.ClusterRegistered.FromString(env.payload.value).cluster
                self.clusters[c.name] = (c.backend, c.address)
                self.on_change(None, True)
        elif subject == self._framework_subject and env.type == "FrameworkRegistered":
            self.framework_id = task_pb2.FrameworkRegistered.FromString(env.payload.value).framework_id
        return self

    def _task_event(self, event: t.TaskEvent, msg: object) -> None:
        task_id = event.task_id
        before = self.tasks.get(task_id)
        if isinstance(event, t.TaskLaunched):
            if before is not None:
                return  # a launch is recorded once; a repeat (should not happen) changes nothing
            assert isinstance(msg, task_pb2.TaskLaunched)
            self.addresses[task_id] = msg.host_address
            self.by_group.setdefault(event.group, set()).add(task_id)
        elif before is None:
            return  # an update for a task already dropped from the window of ended ones
        task = t.apply(before, event)
        self.tasks[task_id] = task
        if task.terminal and (before is None or not before.terminal):
            ended = self.ended.setdefault(task.group, deque())
            ended.append(task_id)
            while len(ended) > KEEP_ENDED:
                gone = ended.popleft()
                self.tasks.pop(gone, None)
                self.addresses.pop(gone, None)
                members = self.by_group.get(task.group)
                if members is not None:
                    members.discard(gone)
                    if not members:
                        del self.by_group[task.group]
            if not ended:
                del self.ended[task.group]
        self.on_change(
            task.group, before is None or before.active != task.active or task.terminal != before.terminal
        )

    def _group_event(self, name: str, kind: str, data: bytes) -> None:
        if kind in ("GroupCreated", "GroupUpdated", "GroupRolledBack"):
            msg: group_pb2.GroupCreated | group_pb2.GroupUpdated | group_pb2.GroupRolledBack
            msg = getattr(group_pb2, kind).FromString(data)
            spec = trusted_spec_from_pb(msg.spec)
            if spec.cluster == self.cluster:
                self.groups[name] = GroupEntry(spec, msg.version, spec.instances)
            elif self.groups.pop(name, None) is None:
                return
        elif kind == "GroupScaled":
            g = self.groups.get(name)
            if g is None:
                return
            g.instances = group_pb2.GroupScaled.FromString(data).instances
        elif kind == "GroupDeleted":
            if self.groups.pop(name, None) is None:
                return
            self.pending.pop(name, None)
            self.backoff.pop(name, None)
        else:
            return
        self.on_change(name, True)
