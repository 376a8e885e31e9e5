"""Connecting to NATS: retry until it answers, reconnect forever, and tell listeners about it.

Forever means after a server's ``-ERR`` too: nats-py closes the connection for good on any error
line but a stale connection or a permission violation (``Client._process_err``, its FIXME: "some
errors do not cause the server to close the connection, for now we close"), so one message over the
server's ``max_payload`` (``-ERR 'Maximum Payload Violation'``) used to cut a service off NATS until
it was restarted. :class:`_ReconnectingClient` reconnects instead (credentials refused too: they may
be put right while the service waits, NOT_SERVING).

A connection down for longer than ``down_grace`` seconds makes the service unhealthy
(:attr:`NatsConnection.healthy`, and the listeners of :meth:`NatsConnection.on_health`, which set
the gRPC health status); a blip while the client reconnects does not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats import errors as nats_errors
from nats.aio.client import Client
from nats.protocol.parser import PERMISSIONS_ERR, STALE_CONNECTION

from libs.errors import Unavailable
from libs.metrics import PROCESS
from libs.natscreds import NatsCredentials, redact_url

log = logging.getLogger("bay.nats")

DOWN_GRACE_SECONDS = 3.0


class _ReconnectingClient(Client):
    """nats-py's client, but a server's error line leads to a reconnect rather than a close."""

    async def _process_err(self, err_msg: str) -> None:
        lowered = err_msg.lower()
        if STALE_CONNECTION in lowered or PERMISSIONS_ERR in lowered:
            await super()._process_err(err_msg)  # nats-py reconnects, or the connection stays up
            return
        err = nats_errors.Error(f"nats: {err_msg.strip().strip(chr(39))}")
        log.error("NATS server error %s; reconnecting", err_msg.strip())
        await self._error_cb(err)
        await self._process_op_err(err)


class _Client(_ReconnectingClient):
    """nats-py's client with a second repair. A flush that times out cancels its PONG's future; when that
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

    def __init__(
        self,
        client: Client,
        urls: list[str],
        credentials: NatsCredentials | None = None,
        *,
        down_grace: float = DOWN_GRACE_SECONDS,
    ) -> None:
        self.client = client
        self.urls = urls
        self.credentials = credentials or NatsCredentials()  # for a raw connection of our own
        self.down_grace = down_grace
        self._on_reconnect: list[Callable[[], Awaitable[None]]] = []
        self._on_health: list[Callable[[bool], Awaitable[None]]] = []
        self._down_since: float | None = None
        self._reported_healthy = True
        self._watch: asyncio.Task[None] | None = None
        self.closing = False

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    @property
    def healthy(self) -> bool:
        """Connected, or down for less than ``down_grace`` seconds (reconnecting)."""
        if self.client.is_closed and not self.closing:
            return False
        return self._down_since is None or time.monotonic() - self._down_since < self.down_grace

    def on_health(self, cb: Callable[[bool], Awaitable[None]]) -> None:
        """``cb(False)`` once the connection has stayed down ``down_grace`` seconds, ``cb(True)``
        when it is back."""
        self._on_health.append(cb)

    async def _report(self, healthy: bool) -> None:
        if healthy == self._reported_healthy:
            return
        self._reported_healthy = healthy
        if not healthy:
            log.error("NATS connection down for %.0fs: reporting NOT_SERVING; reconnecting", self.down_grace)
        for cb in list(self._on_health):
            try:
                await cb(healthy)
            except Exception:
                log.exception("health listener failed")

    async def _disconnected(self) -> None:
        if self.closing:
            return
        if self._down_since is None:
            self._down_since = time.monotonic()
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._unhealthy_after_grace())

    async def _unhealthy_after_grace(self) -> None:
        await asyncio.sleep(self.down_grace)
        # still down (not "not self.healthy": the loop's clock may wake us a hair before
        # time.monotonic() says the grace is over, and this is the only look)
        if self._down_since is not None:
            await self._report(False)

    async def _closed(self) -> None:
        if not self.closing:  # nats-py gave up on its own (it should not, now): nothing brings it back
            log.error("NATS connection closed by the client library; the service stays NOT_SERVING")
            await self._report(False)

    def on_reconnect(self, cb: Callable[[], Awaitable[None]]) -> None:
        self._on_reconnect.append(cb)

    def remove_on_reconnect(self, cb: Callable[[], Awaitable[None]]) -> None:
        if cb in self._on_reconnect:
            self._on_reconnect.remove(cb)

    async def _reconnected(self) -> None:
        self._down_since = None
        if self._watch is not None:
            self._watch.cancel()
        await self._report(True)
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
        if self._watch is not None:
            self._watch.cancel()
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
            await conn._disconnected()

    async def closed() -> None:
        if "c" in holder:
            await holder["c"]._closed()

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
        connect_timeout=connect_timeout,  # nats-py types these as int, and takes fractions
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        reconnected_cb=reconnected,
        disconnected_cb=disconnected,
        closed_cb=closed,
        error_cb=error,
        # while reconnecting, a publish must fail, not queue and be sent later
        pending_size=0,
        **(credentials.connect_options() if credentials else {}),
    )
    deadline = asyncio.get_running_loop().time() + wait_seconds
    PROCESS.connecting += 1  # bay_nats_connected 0 while it waits
    try:
        client = await _connect_client(url, options, refused, credentials, deadline, wait_seconds)
    finally:
        PROCESS.connecting -= 1
    conn = NatsConnection(client, urls, credentials)
    holder["c"] = conn
    PROCESS.watch_connection(conn)
    return conn


async def _connect_client(
    url: str,
    options: dict[str, Any],
    refused: asyncio.Event,
    credentials: NatsCredentials | None,
    deadline: float,
    wait_seconds: float,
) -> Client:
    delay = 0.1
    while True:
        client = _Client()
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
    return client
