"""Real command tasks for the simulator (``SimConfig(run_commands=True)``): what a Mesos agent with the
command executor does on this machine.

Per task: a fresh sandbox directory (``<root>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<id>``,
the agent's layout), the ``CommandInfo.uris`` fetched into it (``fetcher.py``; a failure is TASK_FAILED
with the agent's reason), then the command (``sh -c <value>``, or ``value`` with ``arguments`` as argv
when ``shell`` is false) in its own process group, with the agent's environment plus MESOS_SANDBOX,
MESOS_TASK_ID... and ``CommandInfo.environment``; stdout and stderr go to files in the sandbox.
STARTING and RUNNING once spawned; the exit is FINISHED (0) or FAILED ("Command exited with status N");
a kill is SIGTERM to the group, SIGKILL after the kill policy's grace (3 s by default), then KILLED.
When the command ends, whatever it left in its group is killed (the agent destroys the container).

Health checks run as Mesos' checker runs them: after ``delay_seconds``, every ``interval_seconds``,
each bounded by ``timeout_seconds``; failures inside ``grace_period_seconds`` count only once a check
has passed; a TASK_RUNNING update with ``healthy`` on the first success, on the first failure and on a
success after failures; ``consecutive_failures`` failures in a row kill the task (KILLED, healthy false).
HTTP is ``GET http://127.0.0.1:<port><path>`` (200..399 passes), TCP a connect, COMMAND ``sh -c`` in the
sandbox with the check's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.mesos_sim import fetcher

Json = dict[str, Any]
#: (framework id, task id, state, reason, message, healthy): how a task's changes reach the master
Report = Callable[[str, str, str, str, str, bool | None], None]

DEFAULT_KILL_GRACE = 3.0
STOP_GRACE = 2.0  # SIGTERM to SIGKILL when the simulator stops


@dataclass
class RealTask:
    framework_id: str
    task_id: str
    agent_id: str
    info: Json
    directory: Path
    process: asyncio.subprocess.Process | None = None
    kill_grace: float | None = None  # set once a kill was asked for
    killed_by_health: bool = False
    runner: asyncio.Task[None] | None = None
    checker: asyncio.Task[None] | None = None
    escalation: asyncio.TimerHandle | None = None
    env: dict[str, str] = field(default_factory=dict)


def signal_name(number: int) -> str:
    """As strsignal(3) words it ("Terminated", "Killed"), which is what the executor's message says."""
    return signal.strsignal(number) or f"signal {number}"


def exit_message(returncode: int) -> str:
    if returncode < 0:
        return f"Command terminated with signal {signal_name(-returncode)}"
    return f"Command exited with status {returncode}"


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_grace_of(info: Json, policy: Json | None) -> float:
    """The grace of a kill: the KILL call's policy, else the TaskInfo's, else the agent's 3 s."""
    for source in (policy, info.get("kill_policy")):
        grace = (source or {}).get("grace_period") if source else None
        if grace and "nanoseconds" in grace:
            return max(int(grace["nanoseconds"]) / 1e9, 0.0)
    return DEFAULT_KILL_GRACE


def _variables(command: Json) -> dict[str, str]:
    variables = (command.get("environment") or {}).get("variables", [])
    return {str(v["name"]): str(v.get("value", "")) for v in variables if v.get("type", "VALUE") == "VALUE"}


def _argv(command: Json) -> tuple[list[str], str | None]:
    """``sh -c value`` for a shell command; else ``value`` run with ``arguments`` as its argv."""
    value = str(command.get("value", ""))
    if command.get("shell", True):
        return ["sh", "-c", value], None
    return [str(a) for a in command.get("arguments") or []] or [value], value


class CommandExecutor:
    """The real processes of one simulator; :meth:`stop` ends every one of them."""

    def __init__(self, root: Path, report: Report, *, send_starting: bool = True) -> None:
        self.root = root
        self.report = report
        self.send_starting = send_starting
        self.tasks: dict[tuple[str, str], RealTask] = {}

    def sandbox_dir(self, agent_id: str, framework_id: str, task_id: str) -> Path:
        run = uuid.uuid4()
        path = self.root / "slaves" / agent_id / "frameworks" / framework_id / "executors" / task_id
        path = path / "runs" / str(run)
        path.mkdir(parents=True)
        (path / "stdout").touch()
        (path / "stderr").touch()
        return path

    def launch(self, framework_id: str, task_id: str, agent_id: str, info: Json, directory: Path) -> None:
        task = RealTask(framework_id, task_id, agent_id, info, directory)
        self.tasks[(framework_id, task_id)] = task
        task.runner = asyncio.ensure_future(self._run(task))

    def knows(self, framework_id: str, task_id: str) -> bool:
        return (framework_id, task_id) in self.tasks

    def pid_of(self, framework_id: str, task_id: str) -> int | None:
        task = self.tasks.get((framework_id, task_id))
        return task.process.pid if task and task.process else None

    def kill(self, framework_id: str, task_id: str, policy: Json | None = None) -> None:
        """SIGTERM to the task's group now, SIGKILL after the grace; KILLED once it is gone."""
        task = self.tasks.get((framework_id, task_id))
        if task is None:
            return
        self._kill(task, kill_grace_of(task.info, policy))

    def _kill(self, task: RealTask, grace: float) -> None:
        if task.kill_grace is not None:
            return
        task.kill_grace = grace
        if task.process is None:
            return  # still fetching: _run notices
        killpg(task.process.pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        task.escalation = loop.call_later(grace, killpg, task.process.pid, signal.SIGKILL)

    def forget(self, framework_id: str, task_id: str) -> None:
        """The task is gone for the master (agent lost, framework removed): its processes go too."""
        task = self.tasks.pop((framework_id, task_id), None)
        if task is not None:
            self._abandon(task)

    def _abandon(self, task: RealTask) -> None:
        if task.checker:
            task.checker.cancel()
        if task.process is not None:
            killpg(task.process.pid, signal.SIGKILL)
        elif task.runner:
            task.runner.cancel()

    async def stop(self) -> None:
        """SIGTERM to every group, SIGKILL to what is left after a moment; waits for all of them."""
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            if task.checker:
                task.checker.cancel()
            if task.process is not None and task.process.returncode is None:
                killpg(task.process.pid, signal.SIGTERM)
            elif task.process is None and task.runner:
                task.runner.cancel()
        runners = [t.runner for t in tasks if t.runner]
        if runners:
            _, pending = await asyncio.wait(runners, timeout=STOP_GRACE)
            for task in tasks:
                if task.process is not None:
                    killpg(task.process.pid, signal.SIGKILL)
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE)

    # ---- one task --------------------------------------------------------------------------------------

    def _say(
        self, task: RealTask, state: str, reason: str = "", message: str = "", healthy: bool | None = None
    ) -> None:
        if self.tasks.get((task.framework_id, task.task_id)) is task:
            self.report(task.framework_id, task.task_id, state, reason, message, healthy)

    async def _run(self, task: RealTask) -> None:
        command = task.info.get("command") or {}
        uris = list(command.get("uris") or [])
        if uris:
            error = await asyncio.to_thread(fetcher.fetch, uris, task.directory)
            if error is not None:
                with (task.directory / "stderr").open("a") as err:
                    err.write(error + "\n")
                container = task.directory.name
                self._say(task, "TASK_FAILED", fetcher.REASON, fetcher.failure_message(container, error))
                self.tasks.pop((task.framework_id, task.task_id), None)
                return
        if task.kill_grace is not None:
            self._say(
                task, "TASK_KILLED", "REASON_TASK_KILLED_DURING_LAUNCH", "Killed before the command started"
            )
            self.tasks.pop((task.framework_id, task.task_id), None)
            return
        task.env = self._environment(task, command)
        argv, executable = _argv(command)
        with (task.directory / "stdout").open("ab") as out, (task.directory / "stderr").open("ab") as err:
            try:
                task.process = await asyncio.create_subprocess_exec(
                    *argv,
                    executable=executable,
                    cwd=task.directory,
                    env=task.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own session and process group, as the agent's launcher
                )
            except OSError as exc:
                self._say(task, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", f"Failed to launch: {exc}")
                self.tasks.pop((task.framework_id, task.task_id), None)
                return
        with (task.directory / "stdout").open("a") as out:
            out.write(f"Forked command at {task.process.pid}\n")
        if self.send_starting:
            self._say(task, "TASK_STARTING")
        self._say(task, "TASK_RUNNING")
        check = task.info.get("health_check")
        if check:
            task.checker = asyncio.ensure_future(self._check_health(task, check))
        try:
            returncode = await task.process.wait()
        finally:
            if task.checker:
                task.checker.cancel()
            if task.escalation:
                task.escalation.cancel()
            killpg(task.process.pid, signal.SIGKILL)  # what it left behind: the container is destroyed
        message = exit_message(returncode)
        if task.kill_grace is not None:
            healthy = False if task.killed_by_health else None
            self._say(task, "TASK_KILLED", "", message, healthy)
        elif returncode == 0:
            self._say(task, "TASK_FINISHED", "", message)
        else:
            self._say(task, "TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", message)
        self.tasks.pop((task.framework_id, task.task_id), None)

    def _environment(self, task: RealTask, command: Json) -> dict[str, str]:
        """The agent's own environment (as executors inherit it), the executor's variables, the task's."""
        env = dict(os.environ)
        env.update(
            MESOS_SANDBOX=str(task.directory),
            MESOS_DIRECTORY=str(task.directory),
            MESOS_TASK_ID=task.task_id,
            MESOS_FRAMEWORK_ID=task.framework_id,
            MESOS_EXECUTOR_ID=task.task_id,
            MESOS_AGENT_ID=task.agent_id,
            MESOS_SLAVE_ID=task.agent_id,
        )
        env.update(_variables(command))
        return env

    # ---- health --------------------------------------------------------------------------------------

    async def _check_health(self, task: RealTask, check: Json) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay = float(check.get("delay_seconds", 15.0))
        interval = float(check.get("interval_seconds", 10.0))
        timeout = float(check.get("timeout_seconds", 20.0))
        grace = float(check.get("grace_period_seconds", 10.0))
        allowed = int(check.get("consecutive_failures", 3))
        initializing = True
        failures = 0
        reported_healthy = False
        await asyncio.sleep(delay)
        while task.kill_grace is None:
            passed = await self._probe(task, check, timeout if timeout > 0 else None)
            if passed:
                if initializing or failures > 0 or not reported_healthy:
                    self._say(task, "TASK_RUNNING", "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED", "", True)
                    reported_healthy = True
                initializing = False
                failures = 0
            elif initializing and grace > 0 and loop.time() - started <= grace:
                pass  # a slow start: not counted yet
            else:
                failures += 1
                kill = allowed > 0 and failures >= allowed
                if failures == 1 or kill:
                    self._say(task, "TASK_RUNNING", "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED", "", False)
                    reported_healthy = False
                if kill:
                    task.killed_by_health = True
                    self._kill(task, kill_grace_of(task.info, None))
                    return
            await asyncio.sleep(interval)

    async def _probe(self, task: RealTask, check: Json, timeout: float | None) -> bool:
        kind = check.get("type", "")
        try:
            if kind == "HTTP":
                return await asyncio.wait_for(_http_ok(check.get("http") or {}), timeout)
            if kind == "TCP":
                return await asyncio.wait_for(_tcp_ok(check.get("tcp") or {}), timeout)
            if kind == "COMMAND":
                return await self._command_ok(task, check.get("command") or {}, timeout)
        except (TimeoutError, OSError, ValueError):
            return False
        return False

    async def _command_ok(self, task: RealTask, command: Json, timeout: float | None) -> bool:
        env = {**task.env, **_variables(command)}
        argv, executable = _argv(command)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            executable=executable,
            cwd=task.directory,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            return await asyncio.wait_for(proc.wait(), timeout) == 0
        finally:
            killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()


async def _http_ok(http: Json) -> bool:
    port = int(http["port"])
    path = str(http.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Mesos/1.11.0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        line = await reader.readline()
        parts = line.split()
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) <= 399
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _tcp_ok(tcp: Json) -> bool:
    _, writer = await asyncio.open_connection("127.0.0.1", int(tcp["port"]))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
