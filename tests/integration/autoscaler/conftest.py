"""Fixtures of the autoscaler's source tests: a plain client of the session's nats-server (no
credentials: the set-up, with every right)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest_asyncio
from nats.aio.client import Client

from tests.conftest import NatsProcess


@pytest_asyncio.fixture
async def nc(nats_server: NatsProcess) -> AsyncIterator[Client]:
    if not nats_server.running:
        nats_server.start()
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.close()
