"""One ``bay up`` shared by the e2e tests that do not stop it (starting one takes a few seconds)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.harness import BayUp, running_bay


@pytest_asyncio.fixture(scope="package")
async def bay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BayUp]:
    async with running_bay(tmp_path_factory.mktemp("bay-e2e")) as running:
        yield running
