"""The web UI's server-side sessions, the log-in rate limit and the health bar's parts (no I/O)."""

from __future__ import annotations

from bay.v1 import scheduler_pb2

from services.gateway.ui.overview import health_of
from services.gateway.ui.sessions import LoginLimiter, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_its_idle_time_and_each_use_restarts_it() -> None:
    clock = Clock()
    store = SessionStore(60, clock=clock)
    session = store.create("Bearer secret", "alice", "operator")
    assert session.id != session.csrf and len(session.id) >= 40
    clock.now += 50
    assert store.get(session.id) is session  # used: its idle time starts again
    clock.now += 50
    assert store.get(session.id) is session
    clock.now += 61
    assert store.get(session.id) is None
    assert len(store) == 0


def test_a_session_never_shows_its_token_and_checks_csrf_exactly() -> None:
    store = SessionStore(60, clock=Clock())
    session = store.create("Bearer secret-token", "alice", "viewer")
    assert "secret-token" not in repr(session) and session.id not in repr(session)
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf + "x")
    store.delete(session.id)
    assert store.get(session.id) is None
    assert store.get(None) is None and store.get("") is None


def test_sessions_are_bounded_the_oldest_goes() -> None:
    clock = Clock()
    store = SessionStore(3600, clock=clock, max_sessions=2)
    first = store.create("Bearer a", "a", "viewer")
    clock.now += 1
    second = store.create("Bearer b", "b", "viewer")
    clock.now += 1
    third = store.create("Bearer c", "c", "viewer")
    assert store.get(first.id) is None
    assert store.get(second.id) is second and store.get(third.id) is third


def test_failed_logins_are_limited_per_address_within_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(3, 60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") == 0  # another address is not held back
    clock.now += 30
    assert limiter.retry_after("10.0.0.1") == 30
    clock.now += 30
    assert limiter.retry_after("10.0.0.1") == 0


def status(**counts: int) -> scheduler_pb2.GroupStatusReply:
    pending = counts.pop("pending", 0)
    return scheduler_pb2.GroupStatusReply(known=True, pending=scheduler_pb2.Pending(count=pending), **counts)


def test_the_health_parts_do_not_overlap() -> None:
    h = health_of(5, [status(desired=5, staged=1, running=3, ready=2, unhealthy=1, pending=1)])
    assert (h.desired, h.ready, h.unhealthy, h.starting, h.waiting, h.over) == (5, 2, 1, 1, 1, 0)


def test_tasks_beyond_the_desired_count_are_over_capacity() -> None:
    # scaled from 4 to 3: four still ready until one is stopped
    h = health_of(3, [status(desired=3, running=4, ready=4)])
    assert (h.ready, h.starting, h.over) == (3, 0, 1)
    # a surge: 3 ready and one new starting
    h = health_of(3, [status(desired=3, running=4, ready=3)])
    assert (h.ready, h.starting, h.over) == (3, 0, 1)


def test_a_group_no_scheduler_answered_for_shows_what_it_wants_only() -> None:
    h = health_of(4, [])
    assert (h.desired, h.ready, h.starting, h.waiting) == (4, 0, 0, 0)
