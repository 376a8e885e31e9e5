"""The framework's subscription to the master: the pymesos driver's lifecycle and its events.

pymesos' IO thread reads the subscription and calls :class:`driver.Callbacks`, which only post
``(kind, payload)`` to the inbox; the loop takes them in batches (``inbox.py``). The loop never touches
the driver itself, not even a property (pymesos may hold its lock across blocking I/O): starting and
stopping it run in ``asyncio.to_thread``. Each driver has a generation; what an old one still posts is
ignored.

:meth:`Subscription.start` subscribes (with the stored framework id, if any) and returns once
subscribed. pymesos reconnects by itself after a dropped connection or a leader change; if its thread
dies (an error answer to SUBSCRIBE, say) or the subscription goes silent (no heartbeat), a new driver
is started, after a back-off for the former. A framework the master removed (failover timeout passed)
cannot come back: a new one is registered and its id reported through ``on_framework_id``. A framework
another scheduler took over ("Framework failed over") is left to it: this one stops talking to the
master. The events that concern the other parts (updates, offers, agents) go to them in order through
:class:`Hooks`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from libs.errors import Unavailable

from .calls import MasterCalls
from .config import MesosBackendConfig
from .driver import Callbacks, SafeDriver
from .framework import framework_info, probe_master
from .inbox import Inbox, Item
from .jobs import Jobs

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]
RESTART_MAX_SECONDS = 15.0


@dataclass(frozen=True)
class Hooks:
    """What the rest of the backend hears from the subscription, on the loop."""

    route: Callable[[str, Any], None]  # an event for another part (update, offers, rescinded, ...)
    batch_done: Callable[[], None]  # after each batch of events
    offers_void: Callable[[], None]  # no subscription: the master took back the outstanding offers
    resubscribed: Callable[[bool], Awaitable[None]]  # subscribed again; True: as a new framework


class Subscription:
    def __init__(
        self,
        config: MesosBackendConfig,
        calls: MasterCalls,
        jobs: Jobs,
        hooks: Hooks,
        on_framework_id: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.framework_id: str | None = config.framework_id or None
        self._calls = calls
        self._jobs = jobs
        self._hooks = hooks
        self._on_framework_id = on_framework_id
        self._inbox = Inbox(self._handle)
        self._driver: SafeDriver | None = None
        self._master = ""  # host:port of the master we are subscribed to (pymesos follows the leader)
        self._generation = 0
        self._ready: asyncio.Future[None] | None = None
        self._problem = ""  # the last reason we are not subscribed, for start()'s error
        self._stopping = False
        self._restart_delay = 1.0
        self._restarting = False
        self._register_anew = False  # the master removed our framework: subscribe without its id
        self._superseded = False  # another scheduler took our framework over: stay away
        self._heard_at = 0.0  # loop time of the last event from the current driver

    @property
    def master(self) -> str:
        return self._master or self.config.master_address

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._inbox.open(loop)
        self._stopping = self._superseded = False
        self._ready = loop.create_future()
        self._problem = await probe_master(self.config)
        self._jobs.spawn(self._watch_heartbeats())
        try:
            async with asyncio.timeout(self.config.subscribe_timeout):
                await self._start_driver()
                await asyncio.shield(self._ready)
        except TimeoutError:
            why = f": {self._problem}" if self._problem else ""
            raise Unavailable(
                f"no subscription to the Mesos master at {self.config.master} within "
                f"{self.config.subscribe_timeout:.0f}s{why}",
                hint="check BAY_MESOS_MASTER and that the master is up and elected",
            ) from None

    def halt(self) -> None:
        """From now on events are ignored and nothing restarts (the backend is stopping)."""
        self._stopping = True

    async def close(self) -> None:
        self._stopping = True
        await self._stop_driver()
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()

    async def _start_driver(self) -> None:
        self._generation += 1
        generation = self._generation

        def post(kind: str, payload: Any) -> None:
            self._inbox.post((generation, kind, payload))

        driver = SafeDriver(
            Callbacks(post),
            framework_info(self.config, None if self._register_anew else self.framework_id),
            self.config.master_address,
            on_thread_died=lambda exc: post("died", exc),
        )
        self._driver = driver
        await asyncio.to_thread(driver.start)

    async def _stop_driver(self, timeout: float = 2.0) -> None:
        driver, self._driver = self._driver, None
        self._generation += 1  # whatever the old driver still says is ignored
        self._lost()
        if driver is not None:
            await asyncio.to_thread(driver.stop)  # pymesos' lock: never taken on the loop
            if not await asyncio.to_thread(driver.join_for, timeout):
                log.debug("pymesos' thread is still in a back-off sleep; it ends by itself")

    def _lost(self) -> None:
        """No subscription (any more): no calls until the next one, and its offers are gone."""
        self._calls.unsubscribed()
        self._hooks.offers_void()

    # -- events ------------------------------------------------------------------------------------

    def _handle(self, items: list[Item]) -> None:
        for generation, kind, payload in items:
            if generation != self._generation or self._stopping:
                continue
            self._heard_at = asyncio.get_running_loop().time()
            try:
                if kind == "subscribed":
                    self._on_subscribed(*payload)
                elif kind == "disconnected":
                    if self._calls.is_subscribed:
                        log.warning("subscription to the Mesos master lost; pymesos reconnects")
                    self._lost()
                elif kind == "error":
                    self._on_error(str(payload))
                elif kind == "died":
                    self._on_driver_died(payload)
                elif kind != "heartbeat":  # a heartbeat: being heard is all it says
                    self._hooks.route(kind, payload)
            except Exception:
                log.exception("handling Mesos %s failed", kind)
        self._hooks.batch_done()

    def _on_subscribed(self, framework_id: str, master: str, stream_id: str) -> None:
        self._master = master
        self._calls.subscribed(master, framework_id, stream_id)
        previous = self.framework_id
        self.framework_id = framework_id
        self._register_anew = False
        self._problem = ""
        self._restart_delay = 1.0
        log.info("subscribed to the Mesos master as framework %s", framework_id)
        self._jobs.spawn(self._after_subscribe(framework_id, previous))

    async def _after_subscribe(self, framework_id: str, previous: str | None) -> None:
        ready = self._ready
        if framework_id != previous and self._on_framework_id is not None:
            try:
                await self._on_framework_id(framework_id)
            except Exception as exc:
                if ready is not None and not ready.done():
                    ready.set_exception(exc)  # start() fails: running on with an unstored id is unsafe
                    return
                log.exception("storing framework id %s failed", framework_id)
        if ready is not None and not ready.done():
            ready.set_result(None)
        await self._hooks.resubscribed(previous is not None and framework_id != previous)

    def _on_error(self, message: str) -> None:
        self._problem = f"the master said: {message}"
        lowered = message.lower()
        if "removed" in lowered and self.framework_id and not self._register_anew:
            log.error(
                "the Mesos master removed framework %s (%s): its tasks are gone; registering a new "
                "framework", self.framework_id, message,
            )  # fmt: skip
            self._register_anew = True
            self._restart_soon(0.0)
        elif "failed over" in lowered:
            # Another scheduler subscribed with our framework id: taking it back would make the two
            # steal it from each other for ever. This backend stops talking to the master.
            log.error("another scheduler took over framework %s; this one stops", self.framework_id)
            self._superseded = True
            self._jobs.spawn(self._stop_driver())
        else:
            log.error("the Mesos master reported an error: %s", message)

    async def _watch_heartbeats(self) -> None:
        """Re-subscribe when a subscription stays silent too long (pymesos waits on it for ever)."""
        loop = asyncio.get_running_loop()
        timeout = self.config.heartbeat_timeout
        while not self._stopping:
            await asyncio.sleep(min(timeout / 4, 5.0))
            silent = loop.time() - self._heard_at > timeout
            if self._calls.is_subscribed and silent and self._driver:
                log.warning("nothing from the Mesos master for %.0fs; subscribing again", timeout)
                self._problem = "the subscription went silent"
                self._lost()
                self._restart_soon(0.0)

    def _on_driver_died(self, exc: BaseException | None) -> None:
        self._problem = f"pymesos stopped: {exc!r}"
        log.error("pymesos' thread stopped (%r); a new driver in %.0fs", exc, self._restart_delay)
        self._lost()
        self._restart_soon(self._restart_delay)
        self._restart_delay = min(self._restart_delay * 2, RESTART_MAX_SECONDS)

    def _restart_soon(self, delay: float) -> None:
        if self._restarting or self._stopping or self._superseded:
            return
        self._restarting = True

        async def restart() -> None:
            try:
                await asyncio.sleep(delay)
                if not self._stopping:
                    await self._stop_driver(timeout=0.5)
                    await self._start_driver()
            finally:
                self._restarting = False

        self._jobs.spawn(restart())
