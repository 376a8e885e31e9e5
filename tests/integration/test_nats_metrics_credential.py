"""``bay nats metrics-credential GROUP``, run as the operator runs it, against a data directory and
a nats-server that includes the authorization block written there (as ``bay up``'s does): the
credential it mints publishes its group's custom metrics, which reach a ``PushedMetrics`` store
of another user, and nothing else; minting again is idempotent; rotating and revoking cut the old
seed off once the server reloads."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest_asyncio
from nats.aio.client import Client
from nats.aio.msg import Msg

from libs.events import subjects
from libs.natsserver import free_port, server_config, start_nats
from libs.natsusers import NatsUsers, public_key, write_private
from libs.samples.pushed import PushedMetrics
from tests.poll import poll_until

DEADLINE = 10.0
BAY = str(Path(sys.executable).parent / "bay")


@dataclass
class Platform:
    data_dir: Path
    url: str
    pid: int

    @property
    def users(self) -> NatsUsers:
        return NatsUsers(self.data_dir)

    @property
    def seed(self) -> Path:
        return self.data_dir / "nats-auth" / "metrics" / "web.nk"


@pytest_asyncio.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    """A data directory with the set-up user only, and a nats-server including its authorization
    block (a connection without credentials is the set-up), its pid where the CLI looks for it."""
    data_dir = tmp_path / "data"
    users = NatsUsers(data_dir)
    auth = users.write_auth_config(["setup"])
    config = data_dir / "nats" / "nats.conf"
    extra = f"no_auth_user: {public_key(users.seed_path('setup'))}"
    write_private(config, server_config(config, include=auth, extra=extra).encode())
    port = free_port()
    proc = await asyncio.to_thread(
        start_nats, tmp_path / "js", port, log_file=tmp_path / "nats.log", config_file=config
    )
    (data_dir / "nats" / "bay-nats.pid").write_text(f"{proc.pid}\n")
    try:
        yield Platform(data_dir, f"nats://127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)


@dataclass
class Ran:
    code: int
    stdout: str
    said: str  # stdout and stderr as a reader sees them, wrapped or not


async def bay(platform: Platform, *args: str) -> Ran:
    env = {**os.environ, "BAY_DATA_DIR": str(platform.data_dir), "BAY_NATS_URL": platform.url}
    cli = await asyncio.to_thread(
        subprocess.run,
        [BAY, "nats", "metrics-credential", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return Ran(cli.returncode, cli.stdout.strip(), " ".join((cli.stdout + cli.stderr).split()))


class Refusals:
    """The permission errors nats-server sends one connection."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.changed = asyncio.Event()

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc).lower())
        self.changed.set()

    async def wait_for(self, needle: str) -> None:
        async def seen() -> None:
            while not any(needle in e for e in self.errors):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(seen(), DEADLINE)
        except TimeoutError:
            raise AssertionError(f"NATS did not say {needle!r}; errors: {self.errors}") from None


async def connect_as(url: str, seed: Path, refusals: Refusals | None = None) -> Client:
    async def quiet(exc: Exception) -> None:
        pass

    return await nats.connect(
        url,
        nkeys_seed=str(seed),
        error_cb=refusals.on_error if refusals else quiet,
        allow_reconnect=False,
        connect_timeout=2,
    )


async def admitted(url: str, seed: Path) -> bool:
    try:
        nc = await connect_as(url, seed)
    except (nats.errors.Error, OSError):
        return False
    await nc.close()
    return True


async def test_the_minted_credential_publishes_its_groups_metrics_and_nothing_else(
    platform: Platform,
) -> None:
    ran = await bay(platform, "web")
    assert ran.code == 0, ran.said
    assert Path(ran.stdout) == platform.seed
    assert stat.S_IMODE(platform.seed.stat().st_mode) == 0o600
    assert stat.S_IMODE(platform.seed.parent.stat().st_mode) == 0o700
    assert platform.seed.read_text().strip() not in ran.said  # the path is shown, never the seed
    assert f"pid {platform.pid}" in ran.said and platform.url in ran.said
    assert "bay.metric.web.<name>" in ran.said and '{"value": 12.5, "task": "<task id>"}' in ran.said
    # the reload takes effect shortly after the signal
    await poll_until(
        lambda: admitted(platform.url, platform.seed), "the server admits web's publisher", DEADLINE
    )

    reader = await nats.connect(platform.url)  # no credentials: the set-up, another user
    store = PushedMetrics()
    seen: list[str] = []

    async def on_any(msg: Msg) -> None:
        seen.append(msg.subject)

    refusals = Refusals()
    publisher = await connect_as(platform.url, platform.seed, refusals)
    try:
        await store.subscribe(reader)
        await reader.subscribe(">", cb=on_any)
        await reader.flush()
        for denied in (
            subjects.metric("api", "rps"),  # another group's metric
            subjects.group("web"),  # an event (bay.ev.>)
            "bay.metric.web",  # no metric name: not under bay.metric.web.>
            "$JS.API.STREAM.CREATE.X",
        ):
            await publisher.publish(denied, b"1")
            await refusals.wait_for(f'permissions violation for publish to "{denied.lower()}"')
        await publisher.subscribe(subjects.metric("web", "rps"))
        await refusals.wait_for('permissions violation for subscription to "bay.metric.web.rps"')

        await publisher.publish(subjects.metric("web", "queue.depth"), b'{"value": 9, "task": "web.a"}')
        await publisher.publish(subjects.metric("web", "rps"), b"41.5")
        await poll_until(lambda: store.group_value("web", "rps") == 41.5, "web's rps in the store", DEADLINE)
        assert store.task_values("web", "queue.depth") == {"web.a": 9.0}
        # the refused publishes came first on the same connection: had any got through, it would be here
        assert seen == ["bay.metric.web.queue.depth", "bay.metric.web.rps"]
        assert store.dropped == 0 and publisher.is_connected
    finally:
        await publisher.close()
        await reader.close()


async def test_minting_again_gives_the_same_seed_rotating_and_revoking_cut_the_old_one_off(
    platform: Platform,
) -> None:
    first = await bay(platform, "web")
    assert first.code == 0, first.said
    key = public_key(platform.seed)
    again = await bay(platform, "web")
    assert again.code == 0 and Path(again.stdout) == platform.seed and "the same seed" in again.said
    assert public_key(platform.seed) == key
    assert (platform.data_dir / "nats-auth" / "auth.conf").read_text().count(key) == 1
    await poll_until(
        lambda: admitted(platform.url, platform.seed), "the server admits web's publisher", DEADLINE
    )

    old = platform.data_dir / "old.nk"
    write_private(old, platform.seed.read_bytes())
    on_old = await connect_as(platform.url, old)
    try:
        rotated = await bay(platform, "web", "--rotate")
        assert rotated.code == 0 and "a new seed" in rotated.said, rotated.said
        assert public_key(platform.seed) != key and stat.S_IMODE(platform.seed.stat().st_mode) == 0o600
        # nats-server's reload closes the connections of users it no longer has
        await poll_until(lambda: on_old.is_closed, "the reload closes the old seed's connection", DEADLINE)
    finally:
        await on_old.close()
    assert not await admitted(platform.url, old)
    assert await admitted(platform.url, platform.seed)

    last = platform.data_dir / "last.nk"
    write_private(last, platform.seed.read_bytes())
    kept = await connect_as(platform.url, last)
    try:
        revoked = await bay(platform, "web", "--revoke")
        assert revoked.code == 0 and "revoked" in revoked.said and f"pid {platform.pid}" in revoked.said
        assert not platform.seed.exists()
        assert "metrics/web" not in (platform.data_dir / "nats-auth" / "auth.conf").read_text()

        await poll_until(lambda: kept.is_closed, "the reload closes the revoked user's connection", DEADLINE)
        assert not await admitted(platform.url, last)
    finally:
        await kept.close()


async def test_a_bad_group_name_is_named_and_writes_nothing(platform: Platform) -> None:
    auth = platform.data_dir / "nats-auth" / "auth.conf"
    before = auth.read_bytes(), auth.stat().st_mtime_ns
    bad = await bay(platform, "web.>")
    assert bad.code == 1 and "'web.>'" in bad.said and "DNS label" in bad.said, bad.said
    assert (auth.read_bytes(), auth.stat().st_mtime_ns) == before
    assert list((platform.data_dir / "nats-auth" / "metrics").iterdir()) == []
    none = await bay(platform, "api", "--revoke")
    assert none.code == 2 and "group api has no metrics credential" in none.said, none.said
