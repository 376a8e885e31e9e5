"""The shared folds: one readiness rule, causes and versions kept, and a fold that skips what it
cannot apply (counted, said once) and goes on."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from libs.eventlog.port import Record
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.spec import validate_spec
from libs.views import PlatformView, ready, why_not_ready

SPEC = validate_spec(
    {
        "name": "web",
        "cmd": "x",
        "instances": 2,
        "ports": [{"name": "http"}],
        "health_check": {"protocol": "tcp"},
    }
)


class Log:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.versions: dict[str, int] = {}

    def add(self, subject: str, data: m.EventData, kind: str, ident: str, **env: str) -> Record:
        self.versions[subject] = version = self.versions.get(subject, 0) + 1
        meta = EventMeta("test", env.get("correlation", "c1"), env.get("causation", "c1"))
        envelope = make_envelope(
            to_pb(data),
            aggregate_type=kind,
            aggregate_id=ident,
            aggregate_version=version,
            meta=meta,
            now=100.0,
        )
        rec = Record(len(self.records) + 1, subject, envelope, {"traceparent": env.get("trace", "")})
        self.records.append(rec)
        return rec

    def view(self, cluster: str | None = None) -> PlatformView:
        view = PlatformView(cluster)
        for rec in self.records:
            view.fold(rec)
        return view


def launched(task_id: str, cluster: str = "local") -> m.TaskLaunched:
    return m.TaskLaunched(
        task_id, "web", 1, "h", "h", {"http": 1}, 0.1, 16, 0, 1.0, {}, cluster, "10.0.0.1", "web"
    )


def test_groups_tasks_readiness_and_causes() -> None:
    log = Log()
    created = log.add(subjects.group("web"), m.GroupCreated(SPEC, 1), "group", "web", trace="00-t-s-01")
    log.add(subjects.task("local", "web.1"), launched("web.1"), "task", "web.1")
    log.add(
        subjects.task("local", "web.1"),
        m.TaskStatusChanged("web.1", m.TaskState.RUNNING, 2.0),
        "task",
        "web.1",
    )
    log.add(subjects.task("other", "web.2"), launched("web.2", "other"), "task", "web.2")
    view = log.view("local")
    group = view.live_group("web")
    assert group is not None and group.service == "web" and group.share == 2.0 and group.health_checked
    assert group.cause.event_id == created.envelope.event_id and group.cause.traceparent == "00-t-s-01"
    (task,) = view.group_tasks("web")  # the other cluster's task is not this view's
    assert task.version == 2 and task.host == "10.0.0.1"
    assert not view.is_ready(task) and view.why_not_ready(task) == "health not checked yet"
    log.add(subjects.task("local", "web.1"), m.TaskHealthChanged("web.1", True, 0, 3.0), "task", "web.1")
    view = log.view("local")
    assert [t.id for t in view.ready_tasks("web")] == ["web.1"]
    assert len(log.view().tasks) == 2  # no cluster: every cluster's tasks


@pytest.mark.parametrize(
    ("state", "healthy", "kill", "checked", "why"),
    [
        (m.TaskState.RUNNING, None, "", False, ""),
        (m.TaskState.RUNNING, False, "", False, "unhealthy"),
        (m.TaskState.RUNNING, None, "", True, "health not checked yet"),
        (m.TaskState.RUNNING, True, "", True, ""),
        (m.TaskState.RUNNING, True, "surplus", True, "being killed"),
        (m.TaskState.STAGING, True, "", True, "not running"),
    ],
)
def test_the_readiness_rule_and_its_words_agree(
    state: m.TaskState, healthy: bool | None, kill: str, checked: bool, why: str
) -> None:
    log = Log()
    log.add(subjects.task("local", "web.1"), launched("web.1"), "task", "web.1")
    base = log.view().tasks["web.1"]
    task = replace(base, state=state, healthy=healthy, kill_reason=kill)
    assert why_not_ready(task, checked) == why
    assert ready(task, checked) is (why == "")


def test_a_fold_skips_what_it_cannot_apply_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    log = Log()
    log.add(subjects.group("ghost"), m.GroupScaled(5, 0), "group", "ghost")  # never created
    log.add(subjects.group("ghost"), m.GroupScaled(6, 5), "group", "ghost")
    junk = log.add(subjects.group("web"), m.GroupCreated(SPEC, 1), "group", "web")
    junk.envelope.type = "SomethingNew"  # a type this reader does not know
    log.add(subjects.group("web"), m.GroupCreated(SPEC, 1), "group", "web")
    with caplog.at_level(logging.WARNING, logger="bay.views"):
        view = log.view()
    assert view.skipped == 3 and view.live_group("web") is not None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2  # once per kind of problem, with the sequence
    assert any("sequence 1" in line and "GroupScaled before GroupCreated" in line for line in said)
    assert any("sequence 3" in line and "SomethingNew" in line for line in said)
