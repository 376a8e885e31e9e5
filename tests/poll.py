"""Waiting for a condition that no event announces (a log file's content, a backend's capacity, a
server's answer), with a deadline: the one place the tests look again after a short pause. Wherever
an event says that a thing happened, tests wait for that event instead."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

INTERVAL = 0.01


async def poll_until(check: Callable[[], Any], what: str, timeout: float) -> Any:
    """The first truthy result of ``check()`` (sync or async); AssertionError naming ``what`` after
    ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert loop.time() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(INTERVAL)
