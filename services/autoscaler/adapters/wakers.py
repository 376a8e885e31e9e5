"""The wake-ups from zero over JetStream: :class:`StreamWakes`, the autoscaler's ``WakePort``.

One :class:`~services.autoscaler.sources.backlog.StreamWake` per watched (group, stream, consumer):
an ephemeral consumer of the stream on the subjects the backlog's consumer reads (deliver new,
headers only, no acks), so the first message the stream stores wakes the group's evaluation.

- Arming runs in a task of its own: a stream that does not answer (one the autoscaler's NATS user
  may not read: nats-server drops the request, which then times out) never holds up the loop. A
  watch that could not be armed is tried again every ``retry_seconds``; meanwhile :meth:`problems`
  says why ("stream jobs not found").
- A watch armed counts as a wake: a message stored between the evaluation that found the backlog
  empty and the consumer's creation would otherwise wait for the next tick.
- At most one wake-up per ``gap`` seconds: a busy stream under the activation threshold does not
  turn the loop into a spin.
- Stopping a watch deletes its consumer; if the autoscaler dies instead, nats-server drops the
  consumer ``inactive_threshold`` seconds after its subscription went.

Not noticed: a consumer lost while armed (a nats-server restart loses an in-memory consumer, a
disconnection longer than ``inactive_threshold`` drops it, someone deletes it). The group is then
evaluated at its ticks only, as without a wake, until its watch is made anew (it leaves 0, its
policy changes, or its backlog is unreadable for an evaluation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Any

import nats.errors
import nats.js.errors

from services.autoscaler.ports import WakePort, Watch, wait_first
from services.autoscaler.sources.backlog import StreamWake, consumer_subjects

log = logging.getLogger("bay.autoscaler.wakers")

_STREAM_NOT_FOUND = 10059  # JetStream's err_code for "stream not found"


class StreamWakes(WakePort):
    def __init__(
        self,
        nc: Any,
        *,
        timeout: float = 2.0,
        retry_seconds: float = 5.0,
        inactive_threshold: float = 30.0,
        gap: float = 0.02,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._timeout = timeout
        self._retry = retry_seconds
        self._inactive = inactive_threshold
        self._gap = gap
        self._arming: dict[Watch, asyncio.Task[None]] = {}
        self._armed: dict[Watch, StreamWake] = {}
        self._problems: dict[Watch, str] = {}
        self._woken: set[str] = set()
        self._any = asyncio.Event()
        self._last = 0.0  # loop time of the last wait that returned woken groups

    @property
    def watched(self) -> frozenset[Watch]:
        return frozenset(self._arming) | frozenset(self._armed)

    @property
    def armed(self) -> frozenset[Watch]:
        return frozenset(self._armed)

    async def watch(self, wanted: Collection[Watch]) -> None:
        want = frozenset(wanted)
        for w in self.watched - want:
            await self._stop(w)
        for w in want - self.watched:
            self._arming[w] = asyncio.create_task(self._arm(w), name=f"wake {w.group} on {w.stream}")

    async def wait(self, stop: asyncio.Event, timeout: float) -> set[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not self._woken:
            self._any.clear()
            await wait_first(stop, self._any, timeout)
        pause = min(self._last + self._gap, deadline) - loop.time()
        if self._woken and pause > 0 and not stop.is_set():
            await wait_first(stop, asyncio.Event(), pause)  # the pacing between two wake-ups
        if not self._woken:
            return set()
        self._last = loop.time()
        woken, self._woken = self._woken, set()
        return woken

    def problems(self, group: str) -> list[str]:
        return [why for w, why in self._problems.items() if w.group == group]

    def _wake(self, group: str) -> None:
        self._woken.add(group)
        self._any.set()

    async def _arm(self, w: Watch) -> None:
        while True:
            try:
                watched = await consumer_subjects(self._js, w.stream, w.consumer, timeout=self._timeout)
                # a consumer without a filter on a stream without subjects (one that only sources
                # others) reads everything the stream stores
                wake = StreamWake(
                    self._nc, w.stream, watched or [">"], self._inactive, on_wake=lambda: self._wake(w.group)
                )
                await wake.arm(timeout=self._timeout)
                break
            except Exception as exc:  # whatever it is: a reason in status, and another try
                why = self._problems[w] = _why(w, exc, self._timeout)
                log.warning("no wake-up from zero for %s: %s", w.group, why)
                await asyncio.sleep(self._retry)  # the pace of the next try, not a wait for anything
        self._problems.pop(w, None)
        self._armed[w] = wake
        self._arming.pop(w, None)
        log.info("%s at zero: woken by stream %s (%s)", w.group, w.stream, ", ".join(wake.watched))
        self._wake(w.group)

    async def _stop(self, w: Watch) -> None:
        self._problems.pop(w, None)
        task = self._arming.pop(w, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        wake = self._armed.pop(w, None)
        if wake is not None:
            await wake.disarm()


def _why(w: Watch, exc: BaseException, timeout: float) -> str:
    """The reason a watch could not be armed, in status's words."""
    if isinstance(exc, nats.js.errors.NotFoundError):
        if exc.err_code == _STREAM_NOT_FOUND:
            return f"stream {w.stream} not found"
        return f"consumer {w.consumer} of stream {w.stream} not found"
    if isinstance(exc, (TimeoutError, nats.errors.TimeoutError)):
        return (
            f"stream {w.stream}: JetStream did not answer within {timeout:g} s"
            " (may the autoscaler's NATS user read the stream?)"
        )
    if isinstance(exc, nats.errors.NoRespondersError):
        return f"stream {w.stream}: no JetStream answers on this NATS"
    if isinstance(exc, nats.js.errors.APIError):
        return f"stream {w.stream}: {exc.description or exc}"
    return f"stream {w.stream}: {exc}"
