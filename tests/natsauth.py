"""The test session's NATS users: the session's nats-server runs with Bay's authorization (a user per
service, plus the set-up, which a connection without credentials is taken for, so that a test may
publish and manage streams directly). Services started by the harnesses connect as their own
users, so every test exercises the permissions of :mod:`libs.natsperms`.
"""

from __future__ import annotations

from pathlib import Path

from libs.natscreds import NatsCredentials
from libs.natsusers import NatsUsers

#: the schedulers' clusters the tests run
CLUSTERS = ("local", "sim", "other")
ROLES = ("setup", "registry", "dns", "gateway", "audit", *(f"scheduler-{c}" for c in CLUSTERS))

_users: list[NatsUsers] = []


def use(users: NatsUsers) -> None:
    """Called once by the session's nats-server fixture."""
    _users[:] = [users]


def users() -> NatsUsers:
    assert _users, "the nats_server fixture has not started"
    return _users[0]


def seed(role: str) -> Path:
    return users().service_seed(role)


def credentials(role: str) -> NatsCredentials:
    """The credentials of Bay's service ``role`` on the session's server."""
    return NatsCredentials(nkey_seed=seed(role))


def env(role: str) -> dict[str, str]:
    """The same, for a service process's environment."""
    return {"BAY_NATS_NKEY_SEED": str(seed(role))}
