"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.integration.registry_harness import RunningRegistry, start_registry
from tests.integration.scheduler_harness import kill_tasks, register_cluster


@pytest_asyncio.fixture
async def registry(fresh_stream: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """A registry on an empty log, with the cluster `local` registered (its local backend's tasks,
    if a test starts a scheduler, are killed at the end)."""
    reg = await start_registry(fresh_stream, tmp_path)
    await register_cluster(reg, "local", "local")
    yield reg
    await reg.stop()
    kill_tasks(tmp_path)


@pytest_asyncio.fixture
async def reg(registry: RunningRegistry) -> RunningRegistry:
    """The same, by the name the registry's own tests use."""
    return registry
