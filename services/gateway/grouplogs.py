"""A group's logs: every task's stream, each line prefixed ``<task-id> | ``, merged as lines come.

As ``stern`` does for Kubernetes: the tasks are the group's live ones in the gateway's view (every
cluster's); each task's log is its scheduler's TaskLogs stream, read concurrently and cut into whole
lines, so that two tasks' lines never interleave within a line. Following, the view's watch
(:class:`libs.views.watch.WatchedView`) wakes the merge at each change of the group: a task that
started meanwhile joins, and an ended task's stream ends by itself (its scheduler ends it once all
is read). The whole stream ends when the group is deleted, the gateway stops, or the client leaves
(the response's iterator is closed: every task's stream is cancelled with it). A task whose log
cannot be read (its scheduler is down, say) gets one line saying why, and the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bay.v1 import scheduler_pb2

from libs.clients import SchedulerPool
from libs.errors import BayError
from libs.events.model import TaskState
from libs.views import tasks as tv
from libs.views.watch import WatchedView

#: a line longer than this goes out in pieces (each prefixed), so that one task cannot hold the
#: merge's memory hostage with output that never ends a line
MAX_LINE = 64 * 1024
#: lines waiting for a slow client; a task's stream waits (its gRPC flow control) when it is full
QUEUE_LINES = 1024


@dataclass(frozen=True)
class LogRequest:
    group: str
    stream: str
    tail: int
    follow: bool
    first_within: float  # how long a scheduler may take to answer a TaskLogs call


def _loggable(task: tv.Task) -> bool:
    """A task its scheduler has started (a task still STAGING may not be known to its backend)."""
    return not task.terminal and task.state != TaskState.STAGING


def _gone(view: WatchedView, group: str) -> bool:
    found = view.groups.get(group)
    return found is not None and found.deleted


async def _task_lines(
    task: tv.Task, req: LogRequest, schedulers: SchedulerPool, out: asyncio.Queue[bytes]
) -> None:
    prefix = f"{task.id} | ".encode()
    try:
        sched = schedulers.of(task.cluster)
        chunks: AsyncIterator[scheduler_pb2.LogChunk] = await sched.open_stream(
            sched.stub.TaskLogs,
            scheduler_pb2.TaskLogsRequest(id=task.id, stream=req.stream, tail=req.tail, follow=req.follow),
            first_within=req.first_within,
            first_required=False,  # a task that prints nothing yet is no error
        )
        partial = b""
        async for chunk in chunks:
            *lines, partial = (partial + chunk.data).split(b"\n")
            while len(partial) > MAX_LINE:
                lines.append(partial[:MAX_LINE])
                partial = partial[MAX_LINE:]
            for line in lines:
                await out.put(prefix + line + b"\n")
        if partial:
            await out.put(prefix + partial + b"\n")
    except BayError as exc:
        await out.put(prefix + f"[bay: this task's log cannot be read: {exc.message}]\n".encode())


async def group_log(
    req: LogRequest, view: WatchedView, schedulers: SchedulerPool, stop: asyncio.Event
) -> AsyncIterator[bytes]:
    """The merged lines of the group's tasks; without ``follow``, of the tasks live now, until
    each one's tail is read."""
    out: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_LINES)
    readers: dict[str, asyncio.Task[None]] = {}
    changed = view.watch(req.group)

    def join_new() -> None:
        for task in view.task_view.of_group(req.group):
            if task.id not in readers and _loggable(task):
                readers[task.id] = asyncio.create_task(_task_lines(task, req, schedulers, out))

    async def supervise() -> None:
        """Join tasks as they start, until the group is deleted (following) or all is read."""
        while True:
            changed.clear()
            if _gone(view, req.group):
                return
            join_new()
            if not req.follow:
                await asyncio.gather(*readers.values())
                return
            await changed.wait()

    supervisor = asyncio.create_task(supervise())
    stopping = asyncio.create_task(stop.wait())
    getter: asyncio.Future[bytes] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(out.get())
            await asyncio.wait({getter, supervisor, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            if stopping.done():
                return
            while not out.empty():  # all read (or the group deleted): what came before is due
                yield out.get_nowait()
            supervisor.result()
            return
    finally:
        view.unwatch(req.group, changed)
        jobs = [j for j in (getter, supervisor, stopping, *readers.values()) if j is not None]
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
