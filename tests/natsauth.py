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
ROLES = (
    "setup",
    "registry",
    "deployer",
    "autoscaler",
    "dns",
    "gateway",
    "audit",
    *(f"scheduler-{c}" for c in CLUSTERS),
)

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


async def set_up(url: str, lease_seconds: float = 10.0) -> None:
    """What ``bay up`` sets up, on the NATS at ``url``: the stream and the lease bucket of
    ``lease_seconds`` (no service's user may create either)."""
    from libs.natsconn import connect
    from libs.natssetup import set_up as set_up_stream
    from libs.settings import CommonSettings

    conn = await connect(url, name="test-setup", wait_seconds=5)  # no credentials: the set-up
    try:
        await set_up_stream(conn, CommonSettings(), [lease_seconds], wait_seconds=5)
    finally:
        await conn.close()
