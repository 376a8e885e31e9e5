"""decide/apply of the group aggregate: pure, no I/O."""

from __future__ import annotations

import pytest

from libs.errors import Conflict, NotFound, ValidationFailed
from libs.spec import GroupSpec, validate_spec
from services.registry.domain import group as g


def spec(**kw: object) -> GroupSpec:
    return validate_spec({"name": "web", "cmd": "run", **kw})


def fold(events: list[g.GroupEvent], start: g.Group | None = None) -> g.Group:
    state = start
    for i, e in enumerate(events):
        state = g.apply(state, e, at=100.0 + i)
    assert state is not None
    return state


def test_create_then_fold() -> None:
    events = g.decide(None, g.CreateGroup(spec(instances=3)))
    assert events == [g.GroupCreated(spec(instances=3), 1)]
    grp = fold(events)
    assert (grp.version, grp.aggregate_version, grp.instances, grp.created) == (1, 1, 3, 100.0)


def test_create_twice_conflicts() -> None:
    grp = fold(g.decide(None, g.CreateGroup(spec())))
    with pytest.raises(Conflict):
        g.decide(grp, g.CreateGroup(spec()))


def test_update_makes_new_version_and_unchanged_update_is_a_no_op() -> None:
    grp = fold(g.decide(None, g.CreateGroup(spec())))
    assert g.decide(grp, g.UpdateGroup(spec())) == []
    events = g.decide(grp, g.UpdateGroup(spec(env={"A": "1"})))
    assert events == [g.GroupUpdated(spec(env={"A": "1"}), 2)]
    assert fold(events, grp).version == 2


def test_expected_version_must_match() -> None:
    grp = fold(g.decide(None, g.CreateGroup(spec())))
    with pytest.raises(Conflict):
        g.decide(grp, g.UpdateGroup(spec(env={"A": "1"}), expected_version=7))
    with pytest.raises(Conflict):
        g.decide(grp, g.ScaleGroup("web", 2, expected_version=2))


def test_scale_keeps_spec_version_and_records_previous() -> None:
    grp = fold(g.decide(None, g.CreateGroup(spec(instances=2))))
    events = g.decide(grp, g.ScaleGroup("web", 10, reason="load"))
    assert events == [g.GroupScaled(10, 2, "load")]
    after = fold(events, grp)
    assert (after.version, after.instances, after.current_spec().instances) == (1, 10, 10)
    assert g.decide(after, g.ScaleGroup("web", 10)) == []


@pytest.mark.parametrize("n", [-1, g.MAX_INSTANCES + 1])
def test_scale_out_of_range_names_instances(n: int) -> None:
    grp = fold(g.decide(None, g.CreateGroup(spec())))
    with pytest.raises(ValidationFailed) as info:
        g.decide(grp, g.ScaleGroup("web", n))
    assert info.value.violations[0].field == "instances"


def test_commands_on_missing_or_deleted_group_are_not_found() -> None:
    with pytest.raises(NotFound):
        g.decide(None, g.ScaleGroup("web", 1))
    grp = fold(g.decide(None, g.CreateGroup(spec())))
    deleted = fold(g.decide(grp, g.DeleteGroup("web")), grp)
    assert deleted.deleted
    with pytest.raises(NotFound):
        g.decide(deleted, g.UpdateGroup(spec(env={"A": "1"})))


def test_create_after_delete_continues_versions() -> None:
    grp = fold(g.decide(None, g.CreateGroup(spec())))
    deleted = fold(g.decide(grp, g.DeleteGroup("web")), grp)
    events = g.decide(deleted, g.CreateGroup(spec()))
    assert events == [g.GroupCreated(spec(), 2)]
    again = fold(events, deleted)
    assert not again.deleted and again.aggregate_version == 3


def test_rollback_restores_config_not_scale() -> None:
    v1 = spec(env={"V": "1"})
    grp = fold(g.decide(None, g.CreateGroup(v1)))
    grp = fold(g.decide(grp, g.UpdateGroup(spec(env={"V": "2"}))), grp)
    grp = fold(g.decide(grp, g.ScaleGroup("web", 5)), grp)
    events = g.decide(grp, g.RollbackGroup("web", 1, v1))
    assert events == [g.GroupRolledBack(v1.model_copy(update={"instances": 5}), 3, 1)]
    after = fold(events, grp)
    assert after.spec.env == {"V": "1"} and after.instances == 5 and after.version == 3


def test_rollback_to_unknown_version_is_not_found() -> None:
    grp = fold(g.decide(None, g.CreateGroup(spec())))
    with pytest.raises(NotFound):
        g.decide(grp, g.RollbackGroup("web", 4, None))
