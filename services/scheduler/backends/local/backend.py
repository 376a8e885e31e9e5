"""The local cluster: tasks are detached processes on this machine, each in its own sandbox.

Exits are noticed through a pidfd per task where the kernel offers it, else by one poller
(``watching.py``). The sandbox holds everything a restarted backend needs:
:meth:`LocalBackend.start` re-adopts live tasks (same pid *and* start time, so a reused pid is not
mistaken for a task) and reports tasks that ended meanwhile, once, from their exit code.
Then it kills every process of a sandbox that no live task accounts for (``strays.py``): a task
starts only once its record is stored (``spawn.py``), so such a process is a leftover, never a task.
Each task runs as a uid of its own (``identity.py``); when it ends, every process of that uid ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from libs.errors import Conflict, NotFound
from services.scheduler.ports import (
    ClusterBackend,
    CommandContext,
    Host,
    LaunchSpec,
    StatusSink,
    TaskState,
    TaskStatus,
    TaskUsage,
)

from . import cgroups, exits, fetch, identity, killing, logwriter, measure, procfs, strays
from .artifacts import ArtifactCache, FetchError
from .config import LocalBackendConfig
from .exits import LAUNCH_FAILED
from .identity import TaskIdentity, UidPool
from .logs import read_log
from .portpool import PortPool
from .priority import TaskPriority
from .running import RunningTask
from .sandbox import SANDBOXES_MODE, Sandbox, spec_from_json
from .spawn import command_argv, go, spawn, task_env
from .uidclaims import open_claims
from .watching import ExitWatcher

log = logging.getLogger("bay.scheduler.local")

RECONCILIATION = "REASON_RECONCILIATION"
TASK_INVALID = "REASON_TASK_INVALID"


class LocalBackend(ClusterBackend):
    kind = "local"

    def host_address(self, host_id: str, hostname: str) -> str:
        return self.config.address

    def __init__(self, config: LocalBackendConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._tasks: dict[str, RunningTask] = {}
        self._ports = PortPool(config.port_begin, config.port_end)
        self._sink: StatusSink | None = None
        self._cgroups: cgroups.CgroupRoot | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._exits = ExitWatcher(
            self._on_exit, self._spawn_bg, self._tasks.values, config.poll_interval_seconds
        )
        self._uids = UidPool(identity.TaskUsers(switch=False, group=None))
        self._ended_uids: set[int] = set()  # uids of ended tasks, from their records
        self._fetch_python = config.fetch_python or sys.executable
        self._artifacts: ArtifactCache | None = None
        self._priority = TaskPriority(config.task_nice)

    def command_context(self, task_id: str) -> CommandContext | None:
        """A command check runs in the task's work directory with its uid and group."""
        task = self._tasks.get(task_id)
        if task is None:
            return None
        who = self._identity(task)
        return CommandContext(str(task.sandbox.work), who.run_as if who else ())

    def _identity(self, task: RunningTask) -> TaskIdentity | None:
        if task.uid is None or not self._uids.users.switch:
            return None
        users = self._uids.users
        return TaskIdentity(task.uid, task.uid, users.group, users.setpriv)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, sink: StatusSink) -> None:
        self._sink = sink
        self.config.sandboxes_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.config.work_dir, self.config.sandboxes_dir):
            os.chmod(path, SANDBOXES_MODE)
        users = identity.resolve(self.config.task_user, self.config.task_uids)
        claims = open_claims(self.config.uid_claims_dir, self.config.sandboxes_dir) if users.switch else None
        self._uids = UidPool(users, claims)
        if self._uids.users.switch and not self.config.fetch_python:
            self._fetch_python = fetch.task_python()  # ours may be out of a task uid's reach
        if self.config.cgroups:
            self._cgroups, why = cgroups.detect(self.config.cgroup_parent, self.config.work_dir.name)
        else:
            why = "disabled by configuration"
        if self._cgroups is None:
            log.warning("cgroup limits unavailable here: %s; tasks run without cpu/mem limits", why)
        for path in sorted(self.config.sandboxes_dir.iterdir()):
            if path.is_dir():
                await self._readopt(Sandbox(path))
        self._uids.adopt(
            (t.uid, t.spec.task_id)
            for t in self._tasks.values()
            if t.uid is not None and not t.state.terminal
        )
        self.kill_strays()
        self._exits.start()

    async def stop(self) -> None:
        """Stop watching; the processes keep running and a new backend re-adopts them."""
        self._exits.stop()
        poller = [self._exits.poller] if self._exits.poller else []
        for job in self._background:
            job.cancel()
        await asyncio.gather(*self._background, *poller, return_exceptions=True)
        self._background.clear()
        self._exits.poller = None
        self._sink = None

    async def _readopt(self, sandbox: Sandbox) -> None:
        final = sandbox.read_final()
        doc = sandbox.read_task()
        if doc is None:
            if final is None:
                log.warning("sandbox %s has no task.json: a launch was interrupted", sandbox.path)
            return
        spec = spec_from_json(doc["spec"])  # written with the assigned host ports
        task = RunningTask(spec=spec, sandbox=sandbox, ports=dict(spec.ports))
        task.pid, task.start_ticks = int(doc["pid"]), int(doc["start_ticks"])
        task.uid = doc.get("uid")
        self._tasks[task.spec.task_id] = task
        if final is not None:
            task.state, task.last = final.state, final
            task.exited.set()
            if task.uid is not None:
                self._ended_uids.add(task.uid)
            return
        task.killing = sandbox.kill_deadline() is not None
        task.cgroup = self._cgroups.find(task.spec.task_id) if self._cgroups else None
        if procfs.is_running(task.pid, task.start_ticks):
            self._ports.adopt(task.spec.task_id, task.ports)
            await self._report(task, TaskState.RUNNING, message="re-adopted after a scheduler restart")
            self._exits.watch(task)
            deadline = sandbox.kill_deadline()
            if deadline is not None:
                self._spawn_bg(self._escalate(task, max(0.0, deadline - self._clock())))
        else:
            await self._on_exit(task)

    # -- launching ---------------------------------------------------------------------------------

    async def launch(self, tasks: list[LaunchSpec]) -> None:
        """Spawning is synchronous (fork and exec); reporting STARTING and RUNNING waits for the sink
        (the scheduler stores them), so tasks are reported concurrently, each in order. One spawn per
        turn of the event loop: a launch of a hundred tasks takes seconds on a busy host, and the
        rest of the scheduler (usage samples, health checks, status reports) goes on between them."""
        started: list[asyncio.Task[None]] = []
        try:
            for spec in tasks:
                started.append(asyncio.create_task(self._launch_one(spec)))
                await asyncio.sleep(0)  # the spawn runs; then whatever else is due
            await asyncio.gather(*started)
        except asyncio.CancelledError:
            for task in started:
                task.cancel()
            raise

    async def _launch_one(self, spec: LaunchSpec) -> None:
        if spec.task_id in self._tasks:
            log.warning("task %s was launched before; not starting it twice", spec.task_id)
            return
        sandbox = Sandbox(self.config.sandboxes_dir / spec.task_id)
        task = RunningTask(spec=spec, sandbox=sandbox)
        self._tasks[spec.task_id] = task
        try:
            who = self._uids.take(spec.task_id)
        except Conflict as exc:
            sandbox.prepare(None, None)
            return await self._fail(task, exc.message)
        task.uid = who.uid if who else None
        sandbox.prepare(task.uid, who.gid if who else None)
        if spec.image:
            msg = f"image tasks are not supported by the local backend (image {spec.image}); use cmd"
            return await self._fail(task, msg)
        if not spec.cmd and not spec.args:
            return await self._fail(task, "the task has neither cmd nor args: nothing to run")
        if spec.fetch:
            try:
                await self._cache().put(spec.fetch, sandbox.work, task.uid, who.gid if who else None)
            except FetchError as exc:
                msg = f"fetching the task's artifact failed: {exc}"
                return await self._fail(task, msg, reason=LAUNCH_FAILED)
            except Exception as exc:  # a bug or a full disk fails this task, never the round
                log.exception("putting the artifacts of %s in place failed", spec.task_id)
                msg = f"fetching the task's artifact failed: {type(exc).__name__}: {exc}"
                return await self._fail(task, msg, reason=LAUNCH_FAILED)
        try:
            task.ports = self._ports.reserve(spec.task_id, spec.ports)
        except Conflict as exc:
            return await self._fail(task, exc.message)
        if self._cgroups is not None:
            try:
                task.cgroup = self._cgroups.create(spec.task_id, spec.cpus, spec.mem)
            except OSError as exc:
                log.warning("task %s runs without cgroup limits: %s", spec.task_id, exc)
        env = task_env(spec, task.ports, self.config.hostname, sandbox.path)
        try:
            c = self.config
            writer = logwriter.writer_args(self._fetch_python, c.log_max_bytes, c.log_keep)
            task.child = spawn(command_argv(spec), env, sandbox.path, who, writer)
        except OSError as exc:
            return await self._fail(task, f"could not start the task: {exc}")
        task.pid = task.child.pid
        self._priority.lower(task.pid)
        stat = procfs.read_stat(task.pid)
        task.start_ticks = stat.start_ticks if stat else 0
        try:  # the record first: the wrapper runs the command only once it is stored (see go)
            record = replace(spec, ports=task.ports)
            sandbox.write_task(record, task.pid, task.start_ticks, self._clock(), task.uid)
        except OSError as exc:
            task.child.kill()
            task.child.wait()
            return await self._fail(task, f"could not record the task in its sandbox: {exc}")
        if task.cgroup is not None:
            try:
                (task.cgroup / "cgroup.procs").write_text(str(task.pid))
            except OSError as exc:
                log.warning("task %s runs without cgroup limits: %s", spec.task_id, exc)
        go(task.child)
        await self._report(task, TaskState.STARTING)
        await self._report(task, TaskState.RUNNING)
        self._exits.watch(task)

    def _cache(self) -> ArtifactCache:
        """The artifact cache (made on first use: a backend whose tasks fetch nothing has none)."""
        if self._artifacts is None:
            c = self.config
            root, limits = c.work_dir / "artifacts", (c.fetch_timeout_seconds, c.fetch_max_bytes)
            self._artifacts = ArtifactCache(root, self._fetch_python, self._uids, *limits)
        return self._artifacts

    async def _fail(self, task: RunningTask, message: str, reason: str = TASK_INVALID) -> None:
        self._ports.release(task.spec.task_id)
        await self._report(task, TaskState.FAILED, message=message, reason=reason)
        task.exited.set()

    # -- exits ---------------------------------------------------------------------------------------

    async def _on_exit(self, task: RunningTask) -> None:
        """Collect the exit: kill stragglers of the group, reap if it is our child, report once."""
        if task.state.terminal or task.collecting:
            return
        task.collecting = True
        # Killing: the task has ended when its whole group has, within the grace (the wrapper's
        # `sh -c` may die at once while the command is still shutting down gracefully).
        while task.killing and not task.sigkilled and killing.SCAN.members(task.pid):  # noqa: ASYNC110
            await asyncio.sleep(killing.POLL_SECONDS)  # no event tells that a process group emptied
        killing.end_leftovers(task.pid, task.uid)
        wait_status: int | None = None
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(task.pid, os.WNOHANG)  # noqa: ASYNC222 (WNOHANG: never blocks)
            wait_status = status if pid else None
        code = task.sandbox.exit_code()
        if code is None and wait_status is not None and os.WIFEXITED(wait_status):
            code = os.WEXITSTATUS(wait_status)
        last = "" if task.killing or code == 0 else task.sandbox.last_line("stderr")
        ended = exits.outcome(
            killing=task.killing,
            sigkilled=task.sigkilled,
            code=code,
            wait_status=wait_status,
            last_stderr=last,
        )
        await self._report(
            task, ended.state, message=ended.message, reason=ended.reason, exit_code=ended.exit_code
        )
        task.exited.set()

    # -- killing -----------------------------------------------------------------------------------

    async def kill(self, task_id: str, grace_seconds: float = 10.0) -> None:
        task = self._tasks.get(task_id)
        if task is None:
            await self._emit(self._unknown(task_id, "kill of an unknown task"))
            return
        if task.state.terminal or task.killing:
            return
        task.killing = True
        task.sandbox.mark_kill(self._clock() + grace_seconds)
        signalled = killing.terminate_group(task.pid, set())
        self._spawn_bg(self._escalate(task, grace_seconds, signalled))

    async def end_tasks(self, task_ids: list[str], grace_seconds: float) -> None:
        for task_id in task_ids:
            await self.kill(task_id, grace_seconds)
        ending = [t.exited.wait() for tid in task_ids if (t := self._tasks.get(tid)) is not None]
        with contextlib.suppress(TimeoutError):  # SIGKILL comes at the grace; reporting may lag
            await asyncio.wait_for(asyncio.gather(*ending), grace_seconds + 5.0)

    async def _escalate(
        self, task: RunningTask, grace_seconds: float, signalled: set[int] | None = None
    ) -> None:
        if await killing.escalate(task.pid, task.exited, grace_seconds, signalled or set()):
            task.sigkilled = True

    # -- questions ---------------------------------------------------------------------------------

    async def reconcile(self, task_ids: list[str]) -> None:
        if not task_ids:  # implicit reconciliation: every task that is not over
            task_ids = [tid for tid, task in self._tasks.items() if not task.state.terminal]
            self.kill_strays()
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is None or task.last is None:
                await self._emit(self._unknown(task_id, "unknown to the local backend"))
            else:
                await self._emit(replace(task.last, timestamp=self._clock(), reason=RECONCILIATION))

    async def capacity(self) -> list[Host]:
        held = [t.spec for t in self._tasks.values() if not t.state.terminal]
        return [
            Host(
                host_id="local",
                hostname=self.config.hostname,
                labels=dict(self.config.labels),
                cpus=max(0.0, self.config.cpus - sum(s.cpus for s in held)),
                mem=max(0.0, self.config.mem - sum(s.mem for s in held)),
                disk=max(0.0, self.config.disk - sum(s.disk for s in held)),
                ports=self._ports.free_ranges(),
            )
        ]

    async def usage(self) -> list[TaskUsage]:
        running = [t for t in self._tasks.values() if t.state is TaskState.RUNNING and t.pid]
        return measure.usage([(t.spec, t.pid, t.cgroup) for t in running], self._clock())

    async def logs(
        self, task_id: str, stream: str = "stdout", *, tail: int = 100, follow: bool = False
    ) -> AsyncIterator[bytes]:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id} is unknown to the local backend")
        path = task.sandbox.stream(stream)
        async for chunk in read_log(path, tail, follow, task.exited.is_set):
            yield chunk

    def pid_of(self, task_id: str) -> int:
        """The task's wrapper pid (leader of its process group): for operators and tests."""
        return self._tasks[task_id].pid

    def sandbox_of(self, task_id: str) -> Path:
        return self._tasks[task_id].sandbox.path

    def kill_strays(self) -> int:
        """SIGKILL every process in the sandbox of no live task, or running as an ended task's uid:
        leftovers of a launch or a task that a crash interrupted. The number killed."""
        tasks = self._tasks.values()
        live = [(t.spec.task_id, t.pid, t.uid) for t in tasks if not t.state.terminal and t.pid]
        ended = {uid for uid in self._ended_uids if not self._uids.others(uid)}  # others' now
        return strays.kill(self.config.sandboxes_dir, live, ended)

    # -- reporting ---------------------------------------------------------------------------------

    async def _report(
        self,
        task: RunningTask,
        state: TaskState,
        *,
        message: str = "",
        reason: str = "",
        exit_code: int | None = None,
    ) -> None:
        status = TaskStatus(
            task_id=task.spec.task_id,
            state=state,
            host_id="local",
            hostname=self.config.hostname,
            timestamp=self._clock(),
            message=message,
            reason=reason,
            exit_code=exit_code,
        )
        task.state, task.last = state, status
        if state.terminal:
            self._ports.release(task.spec.task_id)
            self._uids.release(task.uid)
            if task.uid is not None:
                self._ended_uids.add(task.uid)
            if self._cgroups is not None and task.cgroup is not None:
                self._cgroups.remove(task.spec.task_id)
        await self._emit(status)
        if state.terminal:
            task.sandbox.write_final(status)  # after the sink took it: at least once, never lost

    def _unknown(self, task_id: str, message: str) -> TaskStatus:
        return TaskStatus(
            task_id=task_id,
            state=TaskState.LOST,
            host_id="local",
            hostname=self.config.hostname,
            timestamp=self._clock(),
            message=message,
            reason=RECONCILIATION,
        )

    async def _emit(self, status: TaskStatus) -> None:
        if self._sink is None:
            raise RuntimeError("the local backend is not started")
        await self._sink(status)

    def _spawn_bg(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)
