"""The fold rules of version targets (libs/views/groups.py) and the registry's SetRollout."""

from __future__ import annotations

import pytest

from libs.errors import ValidationFailed
from libs.events import model as m
from libs.spec import validate_spec
from libs.views.groups import Group, apply
from services.registry.domain import group as g


def spec(instances: int = 3, **kw: object) -> object:
    return validate_spec({"name": "web", "cmd": "run", "instances": instances, **kw})


def created(instances: int = 3) -> Group:
    return apply(None, m.GroupCreated(spec(instances), 1), 1.0)  # type: ignore[arg-type]


def runs(group: Group) -> list[tuple[int, int, bool]]:
    return [(t.version, t.instances, t.in_service) for t in group.targets]


def test_created_runs_its_first_version_and_a_scale_moves_it() -> None:
    grp = created()
    assert runs(grp) == [(1, 3, True)] and grp.settled
    grp = apply(grp, m.GroupScaled(5, 3), 2.0)
    assert runs(grp) == [(1, 5, True)] and grp.settled


def test_a_spec_change_leaves_the_running_version_until_a_deployment() -> None:
    grp = apply(created(), m.GroupUpdated(spec(3, cmd="run v2"), 2), 2.0)  # type: ignore[arg-type]
    assert grp.version == 2 and runs(grp) == [(1, 3, True)] and not grp.settled
    assert grp.spec_of(1).cmd == "run" and grp.spec_of(2).cmd == "run v2"


def test_an_instance_count_change_alone_scales_the_running_version() -> None:
    grp = apply(created(), m.GroupUpdated(spec(7), 2), 2.0)  # type: ignore[arg-type]
    assert runs(grp) == [(1, 7, True)] and grp.settled


def test_a_group_with_nothing_running_takes_the_new_version_at_once() -> None:
    grp = apply(created(0), m.GroupUpdated(spec(2, cmd="run v2"), 2), 2.0)  # type: ignore[arg-type]
    assert runs(grp) == [(2, 2, True)] and grp.settled


def test_a_rollout_replaces_the_targets_and_drops_empty_old_ones() -> None:
    grp = apply(created(), m.GroupUpdated(spec(3, cmd="run v2"), 2), 2.0)  # type: ignore[arg-type]
    two = (m.VersionTarget(1, grp.spec_of(1), 2), m.VersionTarget(2, grp.spec, 2, True, 20.0))
    grp = apply(grp, m.GroupRolloutChanged(two, "web-1"), 3.0)
    assert runs(grp) == [(1, 2, True), (2, 2, True)] and grp.deployment == "web-1"
    grp = apply(grp, m.GroupScaled(4, 3), 4.0)  # during a deployment: the goal moves, not the targets
    assert grp.instances == 4 and runs(grp) == [(1, 2, True), (2, 2, True)]
    done = (m.VersionTarget(1, grp.spec_of(1), 0), m.VersionTarget(2, grp.spec, 4))
    grp = apply(grp, m.GroupRolloutChanged(done, "web-1"), 5.0)
    assert runs(grp) == [(2, 4, True)] and grp.settled


def test_set_rollout_takes_only_versions_the_registry_can_vouch_for() -> None:
    grp = apply(created(), m.GroupUpdated(spec(3, cmd="run v2"), 2), 2.0)  # type: ignore[arg-type]
    events = g.decide(grp, g.SetRollout("web", (g.RolloutTarget(1, 3), g.RolloutTarget(2, 1, False))))
    assert len(events) == 1 and isinstance(events[0], m.GroupRolloutChanged)
    assert [(t.version, t.spec.cmd, t.in_service) for t in events[0].targets] == [
        (1, "run", True),
        (2, "run v2", False),
    ]
    with pytest.raises(ValidationFailed) as info:
        g.decide(grp, g.SetRollout("web", (g.RolloutTarget(9, 1), g.RolloutTarget(2, -1, True, 101.0))))
    assert [v.field for v in info.value.violations] == [
        "targets[0].version",
        "targets[1].instances",
        "targets[1].weight",
    ]
    with pytest.raises(ValidationFailed) as info:
        g.decide(grp, g.SetRollout("web", ()))
    assert [v.field for v in info.value.violations] == ["targets"]
    # the same targets again change nothing
    same = apply(grp, events[0], 3.0)
    assert g.decide(same, g.SetRollout("web", (g.RolloutTarget(1, 3), g.RolloutTarget(2, 1, False)))) == []
