"""Idempotency keys: remembered 24 h, pruned inside the fold by the events' own time."""

from __future__ import annotations

from libs.spec import validate_spec
from services.registry.domain import group as g
from services.registry.domain.registry import (
    IDEMPOTENCY_TTL_SECONDS,
    PRUNE_EVERY,
    RegistryState,
    apply,
    seen_recently,
)

DAY = IDEMPOTENCY_TTL_SECONDS


def test_keys_are_found_within_the_ttl_and_not_after() -> None:
    state = RegistryState()
    apply(
        state,
        "bay.ev.group.web",
        1,
        g.GroupCreated(validate_spec({"name": "web", "cmd": "x"}), 1),
        1000.0,
        "k1",
    )
    assert seen_recently(state, "k1", 1000.0 + DAY - 1) is not None
    assert seen_recently(state, "k1", 1000.0 + DAY + 1) is None
    assert seen_recently(state, "other", 1000.0) is None


def test_pruning_depends_only_on_the_log_so_replays_agree() -> None:
    def fold() -> RegistryState:
        state = RegistryState()
        apply(
            state,
            "bay.ev.group.web",
            1,
            g.GroupCreated(validate_spec({"name": "web", "cmd": "x"}), 1),
            0.0,
            "old",
        )
        apply(state, "bay.ev.group.web", 2, g.GroupScaled(2, 1), DAY / 2, "recent")
        apply(state, "bay.ev.group.web", PRUNE_EVERY - 1, g.GroupScaled(3, 2), DAY + 10, "")
        assert set(state.idempotency) == {"old", "recent"}  # not yet: only at multiples of PRUNE_EVERY
        apply(state, "bay.ev.group.web", PRUNE_EVERY, g.GroupScaled(4, 3), DAY + 20, "")
        return state

    first, second = fold(), fold()
    assert set(first.idempotency) == {"recent"}
    assert first.idempotency == second.idempotency
