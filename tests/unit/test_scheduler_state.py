"""The scheduler's fold: desired groups of its own cluster, builds, tasks and the window of ended ones."""

from __future__ import annotations

from dataclasses import replace

from bay.v1 import group_pb2
from google.protobuf import message

from libs.eventlog.port import Record
from libs.events import EventMeta, make_envelope, to_pb
from libs.spec import validate_spec
from libs.spec_pb import spec_to_pb
from libs.views import KEEP_ENDED
from services.scheduler.domain import tasks as t
from services.scheduler.domain.state import SchedulerState
from services.scheduler.ports import TaskState
from services.scheduler.service_layer.writer import address_of

META = EventMeta(actor="test")


class Log:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.versions: dict[str, int] = {}

    def add(self, subject: str, event: message.Message, kind: str, ident: str, at: float = 100.0) -> None:
        self.versions[subject] = version = self.versions.get(subject, 0) + 1
        env = make_envelope(
            event, aggregate_type=kind, aggregate_id=ident, aggregate_version=version, meta=META, now=at
        )
        self.records.append(Record(len(self.records) + 1, subject, env))

    def group(self, kind: str, name: str, **spec: object) -> None:
        body = spec_to_pb(validate_spec({"name": name, "cmd": "run", **spec}))
        cls = getattr(group_pb2, kind)
        self.add(f"bay.ev.group.{name}", cls(spec=body, version=len(self.records) + 1), "group", name)

    def task(self, cluster: str, event: t.SchedulerEvent) -> None:
        if isinstance(event, t.TaskLaunched):
            event = replace(event, cluster=cluster)
        subject, kind, ident = address_of(cluster, event)
        self.add(subject, to_pb(event), kind, ident, event.at)

    def fold(self, cluster: str = "local") -> SchedulerState:
        state = SchedulerState(cluster)
        for rec in self.records:
            state = state.fold(rec)
        return state


def launched(task_id: str, group: str = "web", at: float = 100.0) -> t.TaskLaunched:
    return t.TaskLaunched(task_id, group, 1, "local", "h", {"http": 31000}, 0.1, 32, 0, at)


def test_only_this_clusters_groups_are_desired_and_a_move_away_drops_the_group() -> None:
    log = Log()
    log.group("GroupCreated", "web", instances=3)
    log.group("GroupCreated", "far", cluster="other")
    assert set(log.fold().desired()) == {"web"}
    assert log.fold().desired()["web"].instances == 3
    log.add("bay.ev.group.web", group_pb2.GroupScaled(instances=7, previous=3), "group", "web")
    assert log.fold().desired()["web"].instances == 7
    # a spec moving the group elsewhere leaves its tasks here running until a deployment moves them
    log.group("GroupUpdated", "web", cluster="other", instances=7)
    assert log.fold().desired()["web"].version == 1 and log.fold().desired()["web"].instances == 7
    assert set(log.fold("other").desired()) == {"far"}
    # the migration: both clusters run it, then only the target cluster
    both = [
        group_pb2.VersionTarget(
            version=1, spec=spec_to_pb(log.fold().groups["web"].targets[0].spec), instances=7
        ),
        group_pb2.VersionTarget(version=2, spec=spec_to_pb(log.fold().groups["web"].spec), instances=7),
    ]
    log.add("bay.ev.group.web", group_pb2.GroupRolloutChanged(targets=both), "group", "web")
    assert [(w.version, w.instances) for w in log.fold().desired()["web"].wants] == [(1, 7)]
    assert [(w.version, w.instances) for w in log.fold("other").desired()["web"].wants] == [(2, 7)]
    log.add("bay.ev.group.web", group_pb2.GroupRolloutChanged(targets=both[1:]), "group", "web")
    assert log.fold().desired() == {}
    assert set(log.fold("other").desired()) == {"web", "far"}


def test_a_group_of_a_build_runs_the_builds_image_and_waits_for_an_unknown_build() -> None:
    log = Log()
    log.group("GroupCreated", "api", build="b42")
    assert log.fold().desired() == {}
    log.add(
        "bay.ev.build.b42",
        group_pb2.BuildRegistered(build=group_pb2.Build(id="b42", image="reg/api:42")),
        "build",
        "b42",
    )
    spec = log.fold().desired()["api"].spec
    assert spec.image == "reg/api:42" and spec.build is None


def test_task_events_of_another_cluster_are_not_ours() -> None:
    log = Log()
    log.task("other", launched("web.1"))
    log.task("local", launched("web.2"))
    assert set(log.fold().tasks) == {"web.2"}


def test_ended_tasks_are_kept_in_a_window_per_group() -> None:
    log = Log()
    for i in range(KEEP_ENDED + 5):
        log.task("local", launched(f"web.{i}", at=100.0 + i))
        log.task("local", t.TaskStatusChanged(f"web.{i}", TaskState.FAILED, 101.0 + i, exit_code=1))
    log.task("local", launched("web.live", at=500.0))
    state = log.fold()
    ended = [task for task in state.tasks.values() if task.terminal]
    assert len(ended) == KEEP_ENDED
    assert {task.id for task in ended} == {f"web.{i}" for i in range(5, KEEP_ENDED + 5)}
    assert state.tasks["web.live"].state is TaskState.STAGING
    # a late update for a dropped task changes nothing
    log.task("local", t.TaskStatusChanged("web.0", TaskState.LOST, 900.0))
    assert "web.0" not in log.fold().tasks


def test_replaying_the_same_records_gives_the_same_state() -> None:
    log = Log()
    log.group("GroupCreated", "web", instances=2, health_check={"protocol": "command", "command": "true"})
    log.task("local", launched("web.a"))
    log.task("local", t.TaskStatusChanged("web.a", TaskState.RUNNING, 101.0))
    log.task("local", t.TaskHealthChanged("web.a", True, 0, 102.0, "ok"))
    log.task("local", t.PlacementFailed("web", 1, {"cpus": 1}, 1, 103.0))
    log.task("local", t.GroupBackoffChanged("web", 1, 2, 1.15, 105.0, 103.85))
    one, two = log.fold(), log.fold()
    assert one.tasks == two.tasks and one.pending == two.pending and one.backoff == two.backoff
    task = one.tasks["web.a"]
    assert task.healthy is True and one.is_ready(task)
    assert one.pending["web"].reasons == {"cpus": 1}
    assert one.backoff["web"].failures == 2 and one.backoff["web"].next_attempt_at == 105.0


def test_a_running_task_without_a_check_is_ready_but_with_one_only_once_healthy() -> None:
    log = Log()
    log.group("GroupCreated", "plain")
    log.group("GroupCreated", "checked", health_check={"protocol": "command", "command": "true"})
    for name in ("plain", "checked"):
        log.task("local", launched(f"{name}.1", group=name))
        log.task("local", t.TaskStatusChanged(f"{name}.1", TaskState.RUNNING, 101.0))
    state = log.fold()
    assert state.is_ready(state.tasks["plain.1"]) and not state.is_ready(state.tasks["checked.1"])


def test_a_snapshot_restores_the_same_state() -> None:
    from services.scheduler.adapters import snapshot

    log = Log()
    log.group("GroupCreated", "web", instances=2, ports=[{"name": "http"}], health_check={"protocol": "tcp"})
    log.add(
        "bay.ev.cluster.local",
        group_pb2.ClusterRegistered(cluster=group_pb2.Cluster(name="local", backend="local")),
        "cluster",
        "local",
    )
    log.add(
        "bay.ev.build.b1",
        group_pb2.BuildRegistered(build=group_pb2.Build(id="b1", image="img:1")),
        "build",
        "b1",
    )
    for i in range(KEEP_ENDED + 2):
        log.task("local", launched(f"web.{i}", at=100.0 + i))
        log.task("local", t.TaskStatusChanged(f"web.{i}", TaskState.FAILED, 101.0 + i, "r", "m", 3))
    log.task("local", launched("web.live"))
    log.task("local", t.TaskStatusChanged("web.live", TaskState.RUNNING, 200.0))
    log.task("local", t.TaskHealthChanged("web.live", False, 2, 201.0, "refused"))
    log.task("local", t.TaskKillRequested("web.live", "unhealthy", 202.0))
    log.task("local", t.PlacementFailed("web", 1, {"cpus": 1}, 1, 203.0))
    log.task("local", t.GroupBackoffChanged("web", 1, 2, 1.15, 205.0, 203.85))
    state = log.fold()
    back = snapshot.decode(snapshot.encode(state, 42), "local")
    assert back.tasks == state.tasks
    assert back.task_view.by_group == state.task_view.by_group and list(
        map(list, back.task_view.ended.values())
    ) == list(map(list, state.task_view.ended.values()))
    assert back.versions == state.versions
    assert back.backoff == state.backoff and back.pending == state.pending
    assert back.clusters == state.clusters and back.builds == state.builds
    assert back.groups == state.groups
    # folding on from the snapshot behaves like folding on from the log
    log.task("local", t.TaskStatusChanged("web.live", TaskState.KILLED, 210.0))
    for rec in log.records[-1:]:
        back = back.fold(rec)
    assert back.tasks == log.fold().tasks


def test_a_snapshot_of_another_cluster_is_refused() -> None:
    import pytest

    from services.scheduler.adapters import snapshot

    with pytest.raises(ValueError, match="cluster"):
        snapshot.decode(snapshot.encode(SchedulerState("other"), 1), "local")
