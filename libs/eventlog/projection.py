"""A projection: state folded from the log, restored from a snapshot, then followed live."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from libs.errors import BayError, Unavailable
from libs.eventlog.port import EventLog, Record
from libs.eventlog.snapshots import Snapshot, SnapshotStore
from libs.metrics import PROCESS

log = logging.getLogger("bay.projection")

S = TypeVar("S")


class Projection(Generic[S]):
    """``apply(state, record) -> state`` over the log, from a snapshot when there is one.

    ``wait_for(seq)`` gives read-your-writes: a command handler that appended at ``seq`` waits until
    the projection has folded it in before it answers.
    """

    def __init__(
        self,
        *,
        name: str,
        log: EventLog,
        initial: Callable[[], S],
        apply: Callable[[S, Record], S],
        subject_filter: str | None = None,
        snapshots: SnapshotStore | None = None,
        encode: Callable[[S, int], bytes] | None = None,
        decode: Callable[[bytes], S] | None = None,
        snapshot_every: int = 50_000,
    ) -> None:
        self.name = name
        self.log = log
        self.initial = initial
        self.apply = apply
        self.subject_filter = subject_filter
        self.snapshots = snapshots
        self.encode = encode
        self.decode = decode
        self.snapshot_every = snapshot_every
        self.state: S = initial()
        self.sequence = 0
        self.ready = asyncio.Event()
        self._since_snapshot = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tie = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._snapshot_task: asyncio.Task[None] | None = None
        self.replayed = 0
        self.restore_seconds = 0.0
        self.stream = ""  # the log's stream identity, read at start: snapshots name it
        self.live_skipped_base = 0  # the view's skips when it went live (bay_fold_skipped_events_total)

    async def start(self) -> None:
        """Restore and catch up (returns when the state is current), then follow in the background."""
        started = time.perf_counter()
        PROCESS.watch_fold(self)  # its sequence and lag are visible while it replays
        await self._restore()
        await self._catch_up()
        self.restore_seconds = time.perf_counter() - started
        log.info(
            "%s: state at sequence %d (%d events replayed in %.3fs)",
            self.name,
            self.sequence,
            self.replayed,
            self.restore_seconds,
        )
        self.live_skipped_base = int(getattr(self.state, "skipped", 0))
        self.ready.set()
        self._task = asyncio.create_task(self._follow(), name=f"projection-{self.name}")

    async def _restore(self) -> None:
        if self.snapshots is None or self.decode is None:
            return
        self.stream = await self._stream_identity()
        snap = await self.snapshots.load(self.name)
        if snap is None:
            return
        # A snapshot of another stream (this one was deleted and created again) would restore a
        # sequence this stream has never had, and every later append would be a conflict.
        if not self.stream or snap.stream != self.stream:
            log.warning(
                "%s: snapshot at %d was taken from stream %r, not this one (%r): discarded; "
                "replaying from the start",
                self.name,
                snap.sequence,
                snap.stream,
                self.stream,
            )
            return
        try:
            self.state = self.decode(snap.data)
            self.sequence = snap.sequence
        except Exception:
            log.warning("%s: snapshot could not be decoded; replaying from the start", self.name)
            self.state = self.initial()
            self.sequence = 0

    async def _stream_identity(self) -> str:
        while True:
            try:
                return await self.log.stream_identity()
            except Unavailable as exc:
                log.warning("%s: the stream's identity could not be read (%s); retrying", self.name, exc)
                await asyncio.sleep(0.5)

    async def _catch_up(self) -> None:
        while True:
            try:
                async for batch in self.log.read_batches(
                    self.sequence + 1, subject_filter=self.subject_filter
                ):
                    self._fold(batch)
                    self.replayed += len(batch)
                return
            except Unavailable as exc:
                log.warning("%s: catch-up interrupted (%s); retrying", self.name, exc)
                await asyncio.sleep(0.5)

    def _fold(self, batch: list[Record]) -> None:
        """Fold a batch; waiters and snapshots are looked at once a batch, not once an event. Live,
        each event's fold is timed (a replay's are not: it would cost a second on millions)."""
        apply, state, last = self.apply, self.state, self.sequence
        folded = 0
        if self.ready.is_set():
            clock, observe = time.perf_counter, PROCESS.observe_apply
            for rec in batch:
                if rec.sequence > last:
                    began = clock()
                    state = apply(state, rec)
                    observe(clock() - began)
                    last = rec.sequence
                    folded += 1
        else:
            for rec in batch:
                if rec.sequence > last:
                    state = apply(state, rec)
                    last = rec.sequence
                    folded += 1
        self.state, self.sequence = state, last
        self._since_snapshot += folded
        waiters = self._waiters
        while waiters and waiters[0][0] <= last:
            fut = heapq.heappop(waiters)[2]
            if not fut.done():
                fut.set_result(None)
        if self._since_snapshot >= self.snapshot_every:
            self._schedule_snapshot()

    async def _follow(self) -> None:
        while not self._stopping:
            try:
                async for batch in self.log.read_batches(
                    self.sequence + 1, subject_filter=self.subject_filter, follow=True
                ):
                    self._fold(batch)
                    if self._stopping:
                        return
            except asyncio.CancelledError:
                raise
            except BayError as exc:
                log.warning("%s: follow interrupted (%s); resuming", self.name, exc)
            except Exception:
                log.exception("%s: follow failed; resuming", self.name)
            await asyncio.sleep(0.2)

    async def wait_for(self, sequence: int, timeout: float = 5.0) -> None:
        if self.sequence >= sequence:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (sequence, next(self._tie), fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError as exc:
            raise Unavailable(
                f"{self.name}: event {sequence} is stored but not yet visible here (at {self.sequence})",
                hint="the command was carried out; a retry with the same idempotency key answers with it",
            ) from exc

    def _schedule_snapshot(self) -> None:
        if self.snapshots is None or self.encode is None:
            return
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        self._since_snapshot = 0
        try:
            data = self.encode(self.state, self.sequence)  # consistent: taken between two folds
        except Exception:  # a snapshot is an optimisation: its failure must not stop the fold
            log.exception("%s: snapshot at %d could not be encoded", self.name, self.sequence)
            return
        self._snapshot_task = asyncio.create_task(self._save(Snapshot(self.sequence, data, self.stream)))

    async def _save(self, snap: Snapshot) -> None:
        assert self.snapshots is not None
        try:
            await self.snapshots.save(self.name, snap)
        except Exception:
            log.exception("%s: snapshot at %d not saved", self.name, snap.sequence)

    async def snapshot_now(self) -> None:
        if self.snapshots is None or self.encode is None:
            return
        await self._save(Snapshot(self.sequence, self.encode(self.state, self.sequence), self.stream))
        self._since_snapshot = 0

    async def stop(self, *, snapshot: bool = True) -> None:
        self._stopping = True
        task = self._task
        # Cancel until it is done: nats-py swallows a CancelledError that lands inside its flush
        # (nats/aio/client.py, _flush_pending), and a follower that lost its cancellation would
        # go back to waiting for the next event for ever.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if snapshot and self.ready.is_set():
            await self.snapshot_now()
        if self._snapshot_task is not None:
            await asyncio.gather(self._snapshot_task, return_exceptions=True)
