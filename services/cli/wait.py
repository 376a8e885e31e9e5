"""``--wait``: follow a group's status until its tasks are all ready, with a deadline.

The status comes from the gateway's status stream (server-sent events, read by a thread so that
the deadline is kept exactly, whatever the stream does); if the stream breaks, the status endpoint
is polled instead. :func:`settled` is the pure part: when is a scale done.

A status that is unavailable for a while (a 503 because the scheduler is slow or restarting, the
gateway not answering in time or not reachable) is not the end of a wait: during a large scale-up
a scheduler may miss one deadline. The wait rides it out, polling, until its own deadline; only
then does it say what it last saw (and why the status is unavailable, if it still is). Any other
error (the group deleted, a token refused) ends it at once.
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
from services.cli.errors import CliError, ExitCode

JSON = dict[str, Any]
POLL_SECONDS = 0.2
#: a status call never waits past the wait's deadline, nor longer than this
STATUS_CALL_SECONDS = 5.0


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


def transient(exc: CliError) -> bool:
    """Unavailable for now (503, a late or unreachable gateway): worth asking again."""
    return exc.code == ExitCode.UNAVAILABLE


class StatusFeed:
    """A group's statuses as they change; :meth:`next` waits at most its timeout.

    ``on_unavailable`` hears each transient failure (then the feed polls); any other error is
    raised from :meth:`next`."""

    def __init__(
        self,
        gw: GatewayClient,
        group: str,
        *,
        poll_seconds: float = POLL_SECONDS,
        on_unavailable: Callable[[CliError], None] = lambda exc: None,
    ) -> None:
        self.gw = gw
        self.group = group
        self.poll_seconds = poll_seconds
        self.on_unavailable = on_unavailable
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
            return self._poll(timeout)
        try:
            item = self._items.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if isinstance(item, CliError):
            if not transient(item):
                raise item
            self.on_unavailable(item)
            return None  # the stream's end follows: polling from then on
        if item is None:
            self._polling = True
            return self._poll(timeout)
        return item

    def _poll(self, timeout: float) -> JSON | None:
        try:
            return self.gw.group_status(self.group, timeout=max(0.1, min(STATUS_CALL_SECONDS, timeout)))
        except CliError as exc:
            if not transient(exc):
                raise
            self.on_unavailable(exc)
            return None

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
    on_unavailable: Callable[[CliError], None] = lambda exc: None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, JSON | None]:
    """(settled in time, the last status seen); ``on_status`` hears every status,
    ``on_unavailable`` every time the status could not be had (the wait goes on)."""
    deadline = clock() + timeout
    feed = StatusFeed(gw, group, on_unavailable=on_unavailable)
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
