"""Idempotency keys: remembered 24 h, pruned inside the fold by the events' own time."""

from __future__ import annotations

from libs.eventlog.port import Record
from libs.events import EventMeta, make_envelope, to_pb
from libs.events.model import EventData
from libs.spec import validate_spec
from services.registry.domain import group as g
from services.registry.domain.registry import (
    IDEMPOTENCY_TTL_SECONDS,
    PRUNE_EVERY,
    RegistryState,
    seen_recently,
)

DAY = IDEMPOTENCY_TTL_SECONDS


def apply(state: RegistryState, subject: str, seq: int, event: EventData, at: float, key: str) -> None:
    """Fold one group event as the registry stores it."""
    version = state.version_of(subject) + 1
    env = make_envelope(
        to_pb(event),
        aggregate_type="group",
        aggregate_id=subject.rsplit(".", 1)[1],
        aggregate_version=version,
        meta=EventMeta(idempotency_key=key),
        now=at or 1e-9,
    )
    state.fold(Record(seq, subject, env))


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
