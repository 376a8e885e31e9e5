"""Following a group's deployment: the gateway's stream of it (server-sent events, read by a thread so
that a deadline is kept exactly, whatever the stream does), opened again when it drops before the
deployment ended; between, the deployment is read once (nothing is missed: a stream starts with the
deployment as it is).

A gateway or deployer unavailable for a while is ridden out (``on_unavailable`` hears it); any other
error (no such deployment, a token refused) ends the follow at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import httpx

from services.cli import sse
from services.cli.client import GatewayClient
from services.cli.errors import CliError, ExitCode

RETRY_SECONDS = 0.5
READ_SECONDS = 5.0


class DeploymentFeed:
    """The group's deployment at every change; :meth:`next` waits at most its timeout."""

    def __init__(
        self,
        gw: GatewayClient,
        group: str,
        *,
        on_unavailable: Callable[[CliError], None] = lambda exc: None,
    ) -> None:
        self.gw = gw
        self.group = group
        self.on_unavailable = on_unavailable
        self._items: queue.Queue[dict[str, object] | CliError] = queue.Queue()
        self._resp: httpx.Response | None = None
        self._closed = threading.Event()
        threading.Thread(target=self._run, name="bay-deployment-stream", daemon=True).start()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                if self._follow_once():
                    return
                # dropped before the end: read it once (it may have ended meanwhile), then again
                latest = self.gw.group_deployment(self.group, timeout=READ_SECONDS)
                self._items.put(latest)
                if latest.get("ended"):
                    return
            except CliError as exc:
                if exc.code != ExitCode.UNAVAILABLE:
                    self._items.put(exc)
                    return
                self.on_unavailable(exc)
            except (httpx.HTTPError, ValueError, RuntimeError):
                pass  # a broken (or closed) stream: open it again
            if self._closed.wait(RETRY_SECONDS):
                return

    def _follow_once(self) -> bool:
        """True once the stream showed the deployment ended."""
        self._resp = self.gw.deployment_stream(self.group)
        try:
            if self._closed.is_set():
                return True
            for msg in sse.parse(self._resp.iter_lines()):
                if msg.event != "deployment":
                    continue
                d = msg.json()
                self._items.put(d)
                if d.get("ended"):
                    return True
        finally:
            self._resp.close()
        return False

    def next(self, timeout: float) -> dict[str, object] | None:
        """The next deployment, or None if none came within ``timeout`` seconds."""
        try:
            item = self._items.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if isinstance(item, CliError):
            raise item
        return item

    def close(self) -> None:
        self._closed.set()
        if self._resp is not None:
            self._resp.close()


def follow(
    gw: GatewayClient,
    group: str,
    on_change: Callable[[dict[str, object]], None],
    *,
    deployment_id: str = "",
    timeout: float | None = None,
    on_unavailable: Callable[[CliError], None] = lambda exc: None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, object] | None:
    """Follow the group's deployment until it ends (then return it), or ``timeout`` passes (then
    return None); ``on_change`` hears each state. With ``deployment_id``, that deployment: if the
    group's stream moves on to another one (ours superseded), ours is read by id."""
    deadline = None if timeout is None else clock() + timeout
    feed = DeploymentFeed(gw, group, on_unavailable=on_unavailable)
    try:
        while True:
            left = 3600.0 if deadline is None else deadline - clock()
            if left <= 0:
                return None
            d = feed.next(left)
            if d is None:
                continue
            if deployment_id and d.get("id") != deployment_id:
                d = gw.get_deployment(deployment_id, timeout=READ_SECONDS)
            on_change(d)
            if d.get("ended"):
                return d
    finally:
        feed.close()
