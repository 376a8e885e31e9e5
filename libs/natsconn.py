"""Connecting to NATS: retry until it answers, reconnect forever, and tell listeners about it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client

from libs.errors import Unavailable
from libs.natscreds import NatsCredentials, redact_url

log = logging.getLogger("bay.nats")


class NatsConnection:
    """A NATS client that keeps reconnecting, with hooks for code that must redo work after it."""

    def __init__(self, client: Client, urls: list[str], credentials: NatsCredentials | None = None) -> None:
        self.client = client
        self.urls = urls
        self.credentials = credentials or NatsCredentials()  # for a raw connection of our own
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
            redact_url(self.client.connected_url.geturl()) if self.client.connected_url else "?",
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
    url: str,
    *,
    name: str,
    wait_seconds: float = 30.0,
    connect_timeout: float = 2.0,
    credentials: NatsCredentials | None = None,
) -> NatsConnection:
    """Connect to NATS, retrying for up to ``wait_seconds`` (a service may start before NATS).

    ``credentials``: user/password, nkey seed file or creds file (a user and password in the URL
    work too); the URL is logged without them."""
    urls = [u.strip() for u in url.split(",") if u.strip()]
    holder: dict[str, NatsConnection] = {}

    async def reconnected() -> None:
        if "c" in holder:
            await holder["c"]._reconnected()

    async def disconnected() -> None:
        conn = holder.get("c")
        if conn is not None and not conn.closing:
            log.warning("disconnected from NATS; reconnecting")

    refused = asyncio.Event()  # wrong credentials: nats-py would retry them for ever

    async def error(exc: Exception) -> None:
        text = str(exc).lower()
        if "authorization violation" in text and "c" not in holder:
            refused.set()
        elif "violation" in text:  # a permission this process's NATS user lacks: worth seeing
            log.warning("NATS refused: %s", exc)
        else:
            log.debug("NATS client error: %s", exc)

    options: dict[str, Any] = dict(
        servers=urls,
        name=name,
        connect_timeout=connect_timeout,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        reconnected_cb=reconnected,
        disconnected_cb=disconnected,
        error_cb=error,
        # while reconnecting, a publish must fail, not queue and be sent later
        pending_size=0,
        **(credentials.connect_options() if credentials else {}),
    )
    deadline = asyncio.get_running_loop().time() + wait_seconds
    delay = 0.1
    while True:
        client = Client()
        try:
            connecting = asyncio.ensure_future(client.connect(**options))
            told = asyncio.ensure_future(refused.wait())
            await asyncio.wait({connecting, told}, return_when=asyncio.FIRST_COMPLETED)
            told.cancel()
            if refused.is_set() and not connecting.done():
                connecting.cancel()
                await client.close()
                what = credentials.describe() if credentials else "the URL's user, if any"
                raise Unavailable(
                    f"NATS at {redact_url(url)} refused this process's credentials ({what})",
                    hint="check BAY_NATS_NKEY_SEED, BAY_NATS_CREDS or BAY_NATS_USER/BAY_NATS_PASSWORD",
                )
            await connecting
            break
        except asyncio.CancelledError:
            connecting.cancel()
            raise
        except Unavailable:
            raise
        except Exception as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise Unavailable(
                    f"NATS at {redact_url(url)} did not answer within {wait_seconds:.0f}s: {exc}"
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
    conn = NatsConnection(client, urls, credentials)
    holder["c"] = conn
    return conn
