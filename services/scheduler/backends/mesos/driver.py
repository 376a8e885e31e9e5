"""pymesos' scheduler driver, made safe to embed in a long-running asyncio service.

pymesos runs the subscription on its own IO thread. Three of its habits would hurt a service:

- When that thread meets an error (a non-2xx answer to SUBSCRIBE, a malformed stream, a callback that
  raised, its connect deadline) it stores the exception and calls ``_thread.interrupt_main()``: the
  main thread, i.e. the asyncio loop, gets it raised at a random point. :class:`_InterruptGuard`
  stands in for the ``thread`` name inside ``pymesos.process``; called from the IO thread of a
  :class:`SafeDriver` it hands the error to the driver's owner instead (any other thread interrupts
  as before). It is installed once, when this module is imported.
- A driver whose thread ends tears the framework down (every task killed) unless it was told to fail
  over. A :class:`SafeDriver` always fails over: a crash or a stop leaves the tasks running.
- Its call methods block on HTTP under the driver's lock and silently do nothing while disconnected:
  the backend sends its calls itself (``calls.py``) and uses pymesos for the subscription only.

Callbacks come on the IO thread; :class:`Callbacks` turns each into ``post(kind, payload)`` and does
nothing else there.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import pymesos.process
from pymesos import MesosSchedulerDriver, Scheduler

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]
Post = Callable[[str, Any], None]


class _InterruptGuard:
    """Replaces ``pymesos.process.thread`` (the ``_thread`` module): see the module docstring."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._local = threading.local()

    def adopt(self, on_death: Callable[[BaseException | None], None]) -> None:
        self._local.on_death = on_death

    def release(self) -> None:
        self._local.on_death = None

    def interrupt_main(self, *args: Any) -> None:
        on_death = getattr(self._local, "on_death", None)
        if on_death is None:
            self._real.interrupt_main(*args)
            return
        pymesos.process._exc_info = None  # else a later Ctrl-C would re-raise this error
        on_death(sys.exc_info()[1])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _install_guard() -> _InterruptGuard:
    current = pymesos.process.thread
    if isinstance(current, _InterruptGuard):
        return current
    guard = _InterruptGuard(current)
    pymesos.process.thread = guard
    return guard


_guard = _install_guard()


class SafeDriver(MesosSchedulerDriver):  # type: ignore[misc]
    """A pymesos driver that never interrupts the main thread and never tears the framework down."""

    def __init__(
        self,
        scheduler: Scheduler,
        framework: Json,
        master: str,
        on_thread_died: Callable[[BaseException | None], None],
    ) -> None:
        super().__init__(
            scheduler,
            framework,
            master,
            use_addict=False,
            implicit_acknowledgements=False,  # acknowledged once the sink has the update
            failover=True,
        )
        self._on_thread_died = on_thread_died

    def _run(self) -> None:
        _guard.adopt(self._on_thread_died)
        try:
            super()._run()
        finally:
            _guard.release()

    def on_event(self, event: Json) -> None:
        """One malformed event must not end the subscription."""
        try:
            super().on_event(event)
        except Exception:
            log.exception("ignoring a Mesos event pymesos could not handle: %.300r", event)

    def stop(self, failover: bool = True) -> None:
        super().stop(failover=True)

    def join_for(self, timeout: float) -> bool:
        """Wait for the IO thread to end (it may sleep in a reconnect backoff); True if it did."""
        thread = self._io_thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()


class Callbacks(Scheduler):  # type: ignore[misc]
    """pymesos callbacks (on its IO thread) -> ``post(kind, payload)``; never raises."""

    def __init__(self, post: Post) -> None:
        self._post = post

    def _put(self, kind: str, payload: Any) -> None:
        try:
            self._post(kind, payload)
        except Exception:  # e.g. the loop is closed: nothing left to tell
            log.debug("dropped Mesos callback %s", kind, exc_info=True)

    def registered(self, driver: SafeDriver, framework_id: Json, master_info: Json) -> None:
        self._put("subscribed", (framework_id["value"], driver.master or "", driver.stream_id or ""))

    def reregistered(self, driver: SafeDriver, master_info: Json) -> None:
        self._put("subscribed", (driver.framework_id, driver.master or "", driver.stream_id or ""))

    def disconnected(self, driver: SafeDriver) -> None:
        self._put("disconnected", None)

    def resourceOffers(self, driver: SafeDriver, offers: list[Json]) -> None:
        self._put("offers", offers)

    def offerRescinded(self, driver: SafeDriver, offer_id: Json) -> None:
        self._put("rescinded", offer_id["value"])

    def statusUpdate(self, driver: SafeDriver, status: Json) -> None:
        self._put("update", status)

    def slaveLost(self, driver: SafeDriver, agent_id: Json) -> None:
        self._put("agent_lost", agent_id["value"])

    def executorLost(self, driver: SafeDriver, executor_id: Json, agent_id: Json, status: Any) -> None:
        self._put("executor_lost", (executor_id.get("value"), agent_id.get("value"), status))

    def processHeartBeat(self, driver: SafeDriver) -> None:
        self._put("heartbeat", None)  # only to be heard: the backend re-subscribes after a silence

    def error(self, driver: SafeDriver, message: str) -> None:
        if is_fatal(message):
            # Stop before pymesos re-subscribes on its own (it would, as soon as the master hangs up):
            # a failed-over framework would be taken back from the scheduler that now has it.
            driver.stop()
        self._put("error", message)


def is_fatal(message: str) -> bool:
    """ERRORs after which subscribing again with the same framework id is wrong."""
    lowered = message.lower()
    return "failed over" in lowered or "removed" in lowered
