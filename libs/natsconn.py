"""Connecting to NATS: retry until it answers, reconnect forever, and tell listeners about it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client

from libs.errors import Unavailable

log = logging.getLogger("bay.nats")


class _Client(Client):
    """nats-py's client with one repair. A flush that times out cancels its PONG's future; when that
    PONG comes late (a stalled server or network), nats-py sets the cancelled future's result, gets
    InvalidStateError, and its read loop ends for good: the connection stays "connected" and hears
    nothing again (no acknowledgement, no delivery) until the process restarts. A late PONG is
    matched to its ping and dropped instead."""

    async def _process_pong(self) -> None:
        if self._pongs:
            future = self._pongs.pop(0)
            if not future.done():
                future.set_result(True)
            self._pongs_received += 1
            self._pings_outstanding = 0


class NatsConnection:
    """A NATS client that keeps reconnecting, with hooks for code that must redo work after it."""

    def __init__(self, client: Client, urls: list[str]) -> None:
        self.client = client
        self.urls = urls
        self._on_reconnect: list[Callable[[], Awaitable[None]]] = []
        self.closing = False

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    def on_reconnect(self, cb: Callable[[], Awaitable[None]]) -> None:
        self._on_reconnect.append(cb)

    def remove_on_reconnect(self, cb: Callable[[], Awaitable[None]]) -> None:
        if cb in self._on_reconnect:
            self._on_reconnect.remove(cb)

    async def _reconnected(self) -> None:
        log.info(
            "reconnected to NATS at %s",
            self.client.connected_url.netloc if self.client.connected_url else "?",
        )
        for cb in list(self._on_reconnect):
            try:
                await cb()
            except Exception:  # a listener's failure must not stop the others
                log.exception("reconnect listener failed")

    async def close(self) -> None:
        self.closing = True
        if not self.client.is_closed:
            try:
                await self.client.drain()
            except Exception:
                await self.client.close()


async def connect(
    url: str, *, name: str, wait_seconds: float = 30.0, connect_timeout: float = 2.0
) -> NatsConnection:
    """Connect to NATS, retrying for up to ``wait_seconds`` (a service may start before NATS)."""
    urls = [u.strip() for u in url.split(",") if u.strip()]
    holder: dict[str, NatsConnection] = {}

    async def reconnected() -> None:
        if "c" in holder:
            await holder["c"]._reconnected()

    async def disconnected() -> None:
        conn = holder.get("c")
        if conn is not None and not conn.closing:
            log.warning("disconnected from NATS; reconnecting")

    async def error(exc: Exception) -> None:
        log.debug("NATS client error: %s", exc)

    # nats-py types these as int, and takes fractions of a second
    seconds: dict[str, Any] = {"connect_timeout": connect_timeout, "reconnect_time_wait": 0.5}
    deadline = asyncio.get_running_loop().time() + wait_seconds
    delay = 0.1
    while True:
        try:
            client = _Client()
            await client.connect(
                servers=urls,
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                **seconds,
                reconnected_cb=reconnected,
                disconnected_cb=disconnected,
                error_cb=error,
                # while reconnecting, a publish must fail, not queue and be sent later
                pending_size=0,
            )
            break
        except Exception as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise Unavailable(f"NATS at {url} did not answer within {wait_seconds:.0f}s: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
    conn = NatsConnection(client, urls)
    holder["c"] = conn
    return conn
