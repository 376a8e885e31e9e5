"""A group's custom metric publisher on a nats-server of its own, run with that user's rights: it
publishes its group's metrics and nothing else, and subscribes to nothing. (The credential as
``bay nats metrics-credential`` mints it: tests/integration/test_nats_metrics_credential.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest_asyncio

from libs.events import subjects
from libs.natsperms import NatsUser, authorization_block, metric_publisher
from libs.natsusers import public_key
from libs.samples.pushed import PushedMetrics
from tests.integration.autoscaler.conftest import own_server, seed_file
from tests.poll import poll_until

DEADLINE = 10.0


class Refusals:
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

        await asyncio.wait_for(seen(), DEADLINE)


@dataclass
class Server:
    url: str
    seed: Path  # the web group's publisher


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    seed = seed_file(tmp_path / "metrics-web.nk")
    admin = seed_file(tmp_path / "admin.nk")
    block = authorization_block(  # Bay's own writer of the users' rights
        [
            NatsUser("metrics/web", public_key(seed), metric_publisher("web")),
            NatsUser("admin", public_key(admin), None),
        ]
    )
    async with own_server(tmp_path, block, admin) as own:
        yield Server(own.url, seed)


async def test_publisher_publishes_its_groups_metrics_only(server: Server) -> None:
    reader = await nats.connect(server.url)  # no credentials: the admin
    refusals = Refusals()
    publisher = await nats.connect(server.url, nkeys_seed=str(server.seed), error_cb=refusals.on_error)
    store = PushedMetrics()
    seen: list[str] = []

    async def on_any(msg: object) -> None:
        seen.append(getattr(msg, "subject", ""))

    try:
        await store.subscribe(reader)
        await reader.subscribe(">", cb=on_any)
        await reader.flush()

        for denied in (subjects.metric("api", "rps"), subjects.group("web"), "$JS.API.STREAM.CREATE.X"):
            await publisher.publish(denied, b"1")
            await refusals.wait_for(f'permissions violation for publish to "{denied.lower()}"')
        await publisher.subscribe("bay.metric.>")
        await refusals.wait_for('permissions violation for subscription to "bay.metric.>"')
        await publisher.subscribe("_INBOX.x")
        await refusals.wait_for('permissions violation for subscription to "_inbox.x"')

        await publisher.publish(subjects.metric("web", "queue.depth"), b'{"value": 9, "task": "web.a"}')
        await publisher.publish(subjects.metric("web", "rps"), b"41.5")
        await poll_until(lambda: store.group_value("web", "rps") == 41.5, "web's rps", DEADLINE)
        assert store.task_values("web", "queue.depth") == {"web.a": 9.0}
        # the refused publishes came first on the same connection: none of them got through
        assert [s for s in seen if not s.startswith("bay.metric.web.")] == []
        assert publisher.is_connected  # refusals do not cost the publisher its connection
    finally:
        await publisher.close()
        await reader.close()
