"""``--wait``: follow a group's status until its tasks are all ready, with a deadline.

The status comes from the gateway's status stream (server-sent events, read by a thread so that
the deadline is kept exactly, whatever the stream does); if the stream breaks, the status endpoint
is polled instead. :func:`settled` is the pure part: when is a scale done.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from services.cli import sse
from services.cli.client import GatewayClient
from services.cli.errors import CliError

JSON = dict[str, Any]
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Target:
    """What a scale asked for: ``instances``, by the event at stream sequence ``sequence``."""

    instances: int
    sequence: int


def seen(status: JSON, target: Target) -> bool:
    """The scheduler's status reflects the scale (or a later change): it is as of the scale's event
    or after, or already wants the count asked (a scale to the current count appends no change)."""
    return (
        int(status.get("sequence", 0)) >= target.sequence
        or int(status.get("desired", -1)) == target.instances
    )


def settled(status: JSON, target: Target) -> bool:
    """Every wanted task is ready, and none is still starting or being killed."""
    return (
        seen(status, target)
        and int(status.get("ready", 0)) == int(status.get("desired", 0))
        and int(status.get("staged", 0)) == 0
        and int(status.get("killing", 0)) == 0
    )


class StatusFeed:
    """A group's statuses as they change; :meth:`next` waits at most its timeout."""

    def __init__(self, gw: GatewayClient, group: str, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.gw = gw
        self.group = group
        self.poll_seconds = poll_seconds
        self._items: queue.Queue[JSON | CliError | None] = queue.Queue()
        self._resp: httpx.Response | None = None
        self._polling = False
        self._closed = threading.Event()
        threading.Thread(target=self._read, name="bay-status-stream", daemon=True).start()

    def _read(self) -> None:
        try:
            self._resp = self.gw.status_stream(self.group)
            if self._closed.is_set():
                self._resp.close()
                return
            for msg in sse.parse(self._resp.iter_lines()):
                if msg.event == "status":
                    self._items.put(msg.json())
        except CliError as exc:
            self._items.put(exc)
        except (httpx.HTTPError, ValueError, RuntimeError):
            pass  # a broken (or closed) stream: the caller polls from now on
        finally:
            self._items.put(None)

    def next(self, timeout: float) -> JSON | None:
        """The next status, or None if none came within ``timeout`` seconds."""
        if self._polling:
            time.sleep(max(0.0, min(self.poll_seconds, timeout)))
            return self.gw.group_status(self.group)
        try:
            item = self._items.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if isinstance(item, CliError):
            raise item
        if item is None:
            self._polling = True
            return self.gw.group_status(self.group)
        return item

    def close(self) -> None:
        self._closed.set()
        if self._resp is not None:
            self._resp.close()


def wait_settled(
    gw: GatewayClient,
    group: str,
    target: Target,
    timeout: float,
    on_status: Callable[[JSON], None],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, JSON | None]:
    """(settled in time, the last status seen); ``on_status`` hears every status."""
    deadline = clock() + timeout
    feed = StatusFeed(gw, group)
    last: JSON | None = None
    try:
        while True:
            left = deadline - clock()
            if left <= 0:
                return False, last
            status = feed.next(left)
            if status is None:
                continue
            last = status
            on_status(status)
            if settled(status, target):
                return True, status
    finally:
        feed.close()
