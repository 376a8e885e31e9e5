"""Canary, blue-green, recreate and migration plans; pauses, the deadline, analysis, abort."""

from __future__ import annotations

import pytest

from libs.errors import Conflict, NotFound
from libs.events import model as m
from services.deployer.domain.bounds import canary_count
from services.deployer.domain.deployment import Abort, Deploy, Pause, Promote, Resume, Undo
from tests.unit.deployer.sim import Sim, spec

V2 = {"cmd": "v2"}


def _new_target(sim: Sim) -> m.VersionTarget | None:
    return sim.group.target(sim.latest.to_version)


@pytest.mark.parametrize(
    ("n", "kind", "value", "want"),
    [(3, "share", 0.1, 1), (3, "share", 0.34, 2), (10, "share", 0.25, 3), (1, "share", 0.5, 1),
     (4, "weight", 10, 1), (4, "weight", 50, 2), (2, "weight", 100, 2), (5, "share", 1.0, 5)],
)  # fmt: skip
def test_canary_counts_round_up_and_never_reach_zero(n: int, kind: str, value: float, want: int) -> None:
    assert canary_count(n, m.CanaryStep(kind, value)) == want


def _canary(sim: Sim, *steps: m.CanaryStep, **kw: object) -> None:
    strategy = m.Strategy("canary", steps=steps, min_ready_seconds=1, **kw)  # type: ignore[arg-type]
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2), strategy=strategy))


def test_canary_share_keeps_the_stable_at_full_size_then_promotes_to_all() -> None:
    sim = Sim(spec(instances=4))
    _canary(sim, m.CanaryStep("share", 0.25), m.CanaryStep("pause", None))
    sim.run(30, until=lambda s: s.latest.paused)
    d = sim.latest
    assert d.paused and d.current_step == 1
    assert sim.group.target(1).instances == 4  # type: ignore[union-attr]
    assert _new_target(sim).instances == 1  # type: ignore[union-attr]
    sim.run(20, until=lambda s: False)  # paused until promoted: nothing moves, no deadline
    assert sim.latest.state == "paused" and _new_target(sim).instances == 1  # type: ignore[union-attr]
    sim.command(Promote("web"))
    sim.run(100)
    assert sim.latest.state == "succeeded"
    assert sim.versions_alive() == {2: 4}


def test_canary_weight_sets_srv_weights_on_both_targets() -> None:
    sim = Sim(spec(instances=3))
    _canary(sim, m.CanaryStep("weight", 20), m.CanaryStep("pause", None))
    sim.run(30, until=lambda s: s.latest.paused)
    new, old = _new_target(sim), sim.group.target(1)
    assert new is not None and old is not None
    assert (new.instances, new.weight) == (1, 20)
    assert (old.instances, old.weight) == (3, 80)
    sim.command(Promote("web", all=True))
    sim.run(100)
    assert sim.latest.state == "succeeded" and sim.group.settled


def test_a_timed_pause_does_not_use_up_the_progress_deadline() -> None:
    sim = Sim(spec(instances=2))
    _canary(sim, m.CanaryStep("share", 0.5), m.CanaryStep("pause", 50.0), progress_deadline_seconds=10.0)
    sim.run(200)
    assert sim.latest.state == "succeeded", sim.latest.reason


def test_a_user_pause_does_not_use_up_the_deadline_and_resume_goes_on() -> None:
    sim = Sim(spec(instances=2), start_delay=3)
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2),
                       strategy=m.Strategy(progress_deadline_seconds=10.0, min_ready_seconds=1)))  # fmt: skip
    sim.run(1, until=lambda s: False)
    sim.command(Pause("web", "look"))
    sim.run(60, until=lambda s: False)
    assert sim.latest.state == "paused"
    sim.command(Resume("web"))
    sim.run(100)
    assert sim.latest.state == "succeeded", sim.latest.reason
    assert sim.latest.paused_seconds >= 50


def test_no_progress_fails_at_the_deadline_and_rolls_back_to_exactly_the_stable_version() -> None:
    sim = Sim(spec(instances=4), crash=lambda v: v == 2)
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2),
                       strategy=m.Strategy(progress_deadline_seconds=20.0)))  # fmt: skip
    sim.run(200)
    d = sim.latest
    assert d.state == "rolled_back" and "deadline" in d.reason
    assert sim.versions_alive() == {1: 4}
    assert sim.group.settled and sim.group.spec.cmd == "v1"
    assert sim.min_ready_seen is not None and sim.min_ready_seen >= 4


def test_no_auto_rollback_stays_where_it_failed() -> None:
    sim = Sim(spec(instances=2), crash=lambda v: v == 2)
    strategy = m.Strategy(progress_deadline_seconds=5.0, no_auto_rollback=True)
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2), strategy=strategy))
    sim.run(100)
    assert sim.latest.state == "failed" and sim.latest.ended
    assert 2 in {t.version for t in sim.group.targets}


def test_analysis_without_data_waits_then_fails_and_rolls_back() -> None:
    sim = Sim(spec(instances=3))
    analysis = m.Analysis(10.0, (m.Threshold("custom:errors", "<", 1.0),))
    _canary(sim, m.CanaryStep("share", 0.34), m.CanaryStep("analysis", None, analysis))
    sim.run(40, until=lambda s: s.latest.current_step == 1)
    sim.run(5, until=lambda s: False)
    assert sim.latest.state == "running"  # no data is not a pass, and not a fail yet
    sim.run(200)
    d = sim.latest
    assert d.state == "rolled_back" and "no data" in d.reason
    step = d.steps[1]
    assert step.started is not None and step.finished is not None and step.finished >= step.started + 10
    assert sim.versions_alive() == {1: 3}


class _Errors:
    def __init__(self, value: float) -> None:
        self.v = value

    def value(self, group: str, metric: str, task_ids: frozenset[str], since: float) -> float | None:
        return self.v if metric == "custom:errors" else None


def test_analysis_passes_with_data_and_fails_at_once_on_a_bad_value() -> None:
    analysis = m.Analysis(5.0, (m.Threshold("custom:errors", "<", 1.0), m.Threshold("restarts", "<=", 0)))
    good = Sim(spec(instances=2), metrics=_Errors(0.0))
    _canary(good, m.CanaryStep("share", 0.5), m.CanaryStep("analysis", None, analysis))
    good.run(200)
    assert good.latest.state == "succeeded"
    bad = Sim(spec(instances=2), metrics=_Errors(5.0))
    _canary(bad, m.CanaryStep("share", 0.5), m.CanaryStep("analysis", None, analysis))
    bad.run(200)
    assert bad.latest.state == "rolled_back" and "custom:errors = 5" in bad.latest.reason


def test_abort_of_a_canary_leaves_only_the_stable_build() -> None:
    sim = Sim(spec(instances=3, build=None))
    _canary(sim, m.CanaryStep("weight", 30), m.CanaryStep("pause", None))
    sim.run(30, until=lambda s: s.latest.paused)
    sim.command(Abort("web", "enough"))
    sim.run(100)
    assert sim.latest.state == "aborted" and not sim.latest.rolling_back
    assert sim.versions_alive() == {1: 3}
    assert sim.group.settled and sim.group.spec.cmd == "v1"
    assert all(t.weight is None and t.in_service for t in sim.group.targets)
    with pytest.raises(NotFound):
        sim.command(Abort("web"))


def test_blue_green_switches_in_one_rollout_then_scales_down_after_the_delay() -> None:
    sim = Sim(spec(instances=3))
    strategy = m.Strategy("blue-green", min_ready_seconds=1, scale_down_delay_seconds=10)
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2), strategy=strategy))
    sim.run(40, until=lambda s: s.latest.paused)
    new, old = _new_target(sim), sim.group.target(1)
    assert new is not None and old is not None
    assert (new.instances, new.in_service, old.instances, old.in_service) == (3, False, 3, True)
    before = len(sim.rollouts)
    sim.command(Promote("web"))
    sim.run(1, until=lambda s: False)
    switch = sim.rollouts[before]
    assert {(t.version, t.instances, t.in_service) for t in switch} == {(1, 3, False), (2, 3, True)}
    sim.run(5, until=lambda s: False)
    assert sim.group.target(1) is not None  # kept for an instant rollback
    sim.run(100)
    assert sim.latest.state == "succeeded" and sim.versions_alive() == {2: 3}


def test_blue_green_abort_after_the_switch_is_instant() -> None:
    sim = Sim(spec(instances=2))
    strategy = m.Strategy("blue-green", min_ready_seconds=1, auto_promote=True, scale_down_delay_seconds=30)
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2), strategy=strategy))
    sim.run(40, until=lambda s: s.latest.current_step == 2)
    sim.command(Abort("web"))
    sim.run(2, until=lambda s: False)
    old = sim.group.target(1)
    assert old is not None and old.in_service and old.instances == 2
    sim.run(50)
    assert sim.latest.state == "aborted" and sim.versions_alive() == {1: 2}


def test_recreate_stops_every_old_task_before_a_new_one_starts() -> None:
    sim = Sim(spec(instances=3))
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2), strategy=m.Strategy("recreate")))
    overlap = []
    for _ in range(60):
        sim.run(1, until=lambda s: False)
        alive = sim.versions_alive()
        if alive.get(1) and alive.get(2):
            overlap.append(alive)
    assert overlap == []
    assert sim.latest.state == "succeeded" and sim.versions_alive() == {2: 3}


def test_migration_starts_in_the_target_cluster_and_waits_for_dns() -> None:
    sim = Sim(spec(instances=2))
    sim.dns = frozenset()
    sim.command(Deploy("web", cluster="sim", strategy=m.Strategy(min_ready_seconds=1)))
    assert sim.latest.strategy.kind == "migration"
    sim.run(20, until=lambda s: False)
    assert sim.latest.current_step == 0  # ready but not answered by DNS yet
    assert {t.spec.cluster for t in sim.group.targets} == {"local", "sim"}
    sim.dns = frozenset(t.id for t in sim.view.group_tasks("web") if t.group_version == 2)
    sim.run(50)
    assert sim.latest.state == "succeeded"
    assert sim.group.spec.cluster == "sim" and sim.versions_alive() == {2: 2}


def test_undo_deploys_back_to_the_version_before_the_last_success() -> None:
    sim = Sim(spec(instances=2))
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2)))
    sim.run(100)
    assert sim.latest.state == "succeeded"
    sim.command(Undo("web"))
    sim.run(100)
    assert sim.latest.state == "succeeded" and sim.group.spec.cmd == "v1"


def test_one_deployment_per_group() -> None:
    sim = Sim(spec(instances=2))
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2)))
    with pytest.raises(Conflict):
        sim.command(Deploy("web", spec=sim.group_spec.model_copy(update={"cmd": "v3"})))


def test_deploying_a_build_takes_its_image_or_command_and_an_unknown_build_is_refused() -> None:
    from libs.errors import ValidationFailed

    sim = Sim(spec(instances=2))
    sim.view.builds["b2"] = m.Build(
        "b2", "", artifact=m.Artifact("file:///x.tgz", "0" * 64, True), cmd="./run"
    )
    with pytest.raises(ValidationFailed):
        sim.command(Deploy("web", build="nope"))
    sim.command(Deploy("web", build="b2"))
    d = sim.latest
    assert d.to_spec.build == "b2" and d.to_spec.cmd is None and d.from_build == ""
    sim.run(100)
    assert sim.latest.state == "succeeded" and sim.group.spec.build == "b2"


def test_a_deploy_of_what_already_runs_is_refused() -> None:
    from libs.errors import ValidationFailed

    sim = Sim(spec(instances=2))
    with pytest.raises(ValidationFailed):
        sim.command(Deploy("web", spec=sim.group_spec))


def test_a_scale_during_a_canary_moves_the_stable_and_the_canary_count() -> None:
    sim = Sim(spec(instances=4))
    _canary(sim, m.CanaryStep("share", 0.25), m.CanaryStep("pause", None))
    sim.run(30, until=lambda s: s.latest.paused)
    sim._group(m.GroupScaled(8, 4))
    sim.run(5, until=lambda s: False)
    assert sim.group.target(1).instances == 8  # type: ignore[union-attr]
    assert _new_target(sim).instances == 2  # type: ignore[union-attr]
    sim.command(Promote("web"))
    sim.run(100)
    assert sim.latest.state == "succeeded" and sim.versions_alive() == {2: 8}


def test_promoting_a_blue_green_before_it_is_ready_switches_only_once_all_are_ready() -> None:
    sim = Sim(spec(instances=3), start_delay=4)
    strategy = m.Strategy("blue-green", min_ready_seconds=1, scale_down_delay_seconds=5)
    sim.command(Deploy("web", spec=sim.group_spec.model_copy(update=V2), strategy=strategy))
    sim.run(2, until=lambda s: False)
    sim.command(Promote("web"))
    sim.run(3, until=lambda s: False)
    new = _new_target(sim)
    assert new is not None and not new.in_service  # not switched to tasks that are not ready
    sim.run(30, until=lambda s: s.latest.current_step == 2)
    new = _new_target(sim)
    assert new is not None and new.in_service and sim.latest.steps[0].state == "done"
    sim.run(100)
    assert sim.latest.state == "succeeded"
