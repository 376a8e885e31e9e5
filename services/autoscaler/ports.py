"""The autoscaler's ports: the registry it scales through, and the wake-ups of groups at zero (the
metric sources are adapters.observe)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Collection
from dataclasses import dataclass


class ScalePort(abc.ABC):
    @abc.abstractmethod
    async def scale(self, group: str, instances: int, *, reason: str, key: str) -> int:
        """Ask for ``instances`` of the group; the stream sequence of the registry's event (a repeat
        of ``key``: the first answer's)."""


@dataclass(frozen=True)
class Watch:
    """A group at zero instances, woken by the messages of its backlog metric's consumer."""

    group: str
    stream: str
    consumer: str


class WakePort(abc.ABC):
    """Wake-ups from zero: a group at zero is evaluated as soon as its backlog gets a message, not at
    the next tick (the adapter: adapters.wakers.StreamWakes)."""

    @abc.abstractmethod
    async def watch(self, wanted: Collection[Watch]) -> None:
        """Watch exactly ``wanted`` from now on: start the new ones, stop the others. Never raises
        for a stream it cannot watch (:meth:`problems` says why)."""

    @abc.abstractmethod
    async def wait(self, stop: asyncio.Event, timeout: float) -> set[str]:
        """The groups woken since the last call: at once if there are some, else at the first wake,
        when ``stop`` is set or after ``timeout`` seconds (then none)."""

    @abc.abstractmethod
    def problems(self, group: str) -> list[str]:
        """Why a watch of the group does not run, for status ("stream jobs not found")."""

    async def aclose(self) -> None:
        await self.watch(())


async def wait_first(stop: asyncio.Event, other: asyncio.Event, timeout: float) -> None:
    """Until either event is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(other.wait())]
    try:
        await asyncio.wait(waits, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waits)


class MemoryWakes(WakePort):
    """Wakes a watched group when told (:meth:`wake`); told by nobody, the loop evaluates at its
    ticks only (``BAY_AUTOSCALER_BACKLOG_WAKE=false``, and the unit tests)."""

    def __init__(self) -> None:
        self.watched: frozenset[Watch] = frozenset()
        self._woken: set[str] = set()
        self._any = asyncio.Event()

    async def watch(self, wanted: Collection[Watch]) -> None:
        self.watched = frozenset(wanted)

    def wake(self, group: str) -> bool:
        """A message for the group's backlog: True if the group was watched."""
        if not any(w.group == group for w in self.watched):
            return False
        self._woken.add(group)
        self._any.set()
        return True

    async def wait(self, stop: asyncio.Event, timeout: float) -> set[str]:
        if not self._woken:
            self._any.clear()
            await wait_first(stop, self._any, timeout)
        woken, self._woken = self._woken, set()
        return woken

    def problems(self, group: str) -> list[str]:
        return []
