"""``BAY_NATS_URL`` deployments: a NATS with user/password users of its own. Credentials work in the
URL and apart from it (``BAY_NATS_USER``/``BAY_NATS_PASSWORD``), for nats-py and for the bulk
reader's own connection, and a password never shows in an error."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.errors import Unavailable
from libs.eventlog import StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.natsconn import connect
from libs.natsserver import free_port, start_nats
from libs.settings import CommonSettings

PASSWORD = "pw-" + secrets.token_urlsafe(12)


@pytest.fixture(scope="module")
def password_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = tmp_path_factory.mktemp("nats-pw")
    conf = store / "nats.conf"
    conf.write_text(f'authorization {{ users = [ {{ user: "bay", password: "{PASSWORD}" }} ] }}\n')
    port = free_port()
    proc = start_nats(store, port, log_file=store / "nats.log", config_file=conf)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


async def test_user_and_password_in_settings_reach_nats_py_and_the_bulk_reader(password_nats: str) -> None:
    settings = CommonSettings(nats_url=f"nats://{password_nats}", nats_user="bay", nats_password=PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in repr(settings.nats_credentials())
    conn = await connect(
        settings.nats_url, name="pw-test", wait_seconds=5, credentials=settings.nats_credentials()
    )
    log = JetStreamEventLog(conn, StreamSettings())
    try:
        await log.ensure_stream()
        for v in (1, 2, 3):
            env = make_envelope(
                to_pb(m.GroupScaled(v, v - 1, "t")), aggregate_type="group", aggregate_id="pw",
                aggregate_version=v, meta=EventMeta("ops"),
            )  # fmt: skip
            await log.append(subjects.group("pw"), env)
        read = [r.sequence async for batch in log.read_batches(1) for r in batch]  # the raw connection
        assert read == [1, 2, 3]
    finally:
        await conn.close()


async def test_a_password_in_the_url_works_and_is_never_shown(password_nats: str) -> None:
    conn = await connect(f"nats://bay:{PASSWORD}@{password_nats}", name="pw-url", wait_seconds=5)
    assert conn.connected
    await conn.close()
    with pytest.raises(Unavailable) as refused:
        await connect(f"nats://bay:{PASSWORD}x@{password_nats}", name="pw-bad", wait_seconds=1)
    assert PASSWORD not in refused.value.message and "***@127.0.0.1" in refused.value.message
    with pytest.raises(Unavailable):  # and no credentials at all: refused too
        await connect(f"nats://{password_nats}", name="pw-none", wait_seconds=1)


def test_the_embedded_users_files_are_private(tmp_path: Path) -> None:
    from libs.natsusers import NatsUsers

    users = NatsUsers(tmp_path / "data")
    seed = users.service_seed("registry")
    conf = users.write_auth_config(["setup"])
    for path, mode in ((users.root, 0o700), (seed.parent, 0o700), (seed, 0o600), (conf, 0o600)):
        assert path.stat().st_mode & 0o777 == mode, path
    assert seed.read_text().startswith("SU") and seed.read_text().strip() not in conf.read_text()
