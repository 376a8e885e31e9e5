"""pymesos' thread to the asyncio loop: events queued under a lock, handed over in batches.

A callback per event through ``call_soon_threadsafe`` would wake the loop (a write to its self-pipe)
once per event: thousands of updates a second during a large launch. The inbox wakes it once for
whatever queued up since the last drain, and the loop handles the batch in arrival order.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Item = tuple[int, str, Any]  # (driver generation, kind, payload): see subscription.py


class Inbox:
    """``post`` from any thread; ``handle`` gets the items on the loop, in order, one list per wake-up."""

    def __init__(self, handle: Callable[[list[Item]], None]) -> None:
        self._handle = handle
        self._items: deque[Item] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def post(self, item: Item) -> None:
        """On any thread (RuntimeError once the loop is closed)."""
        with self._lock:
            self._items.append(item)
            if self._scheduled:
                return  # a drain is already on its way: it takes this item too
            self._scheduled = True
        assert self._loop is not None, "post before open"
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._scheduled = False
        self._handle(items)
