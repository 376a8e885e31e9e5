"""The Mesos cluster backend: a framework on the v1 scheduler HTTP API, through pymesos.

Threads: pymesos' IO thread reads the subscription and calls :class:`driver.Callbacks`, which only
queue ``(kind, payload)`` in an inbox; the loop drains the inbox in batches (one wake-up for many
events). Calls to the master (accept, decline, kill, acknowledge, ...) go from the loop, pipelined on
one connection of the backend's own (``calls.py``), in the order they are made. The loop never touches
the driver itself, not even a property (pymesos may hold its lock across blocking I/O): starting and
stopping it run in ``asyncio.to_thread``.

Lifecycle: :meth:`MesosBackend.start` subscribes (with the stored framework id, if any) and returns
once subscribed; after every (re-)subscription the backend asks for implicit reconciliation, re-sends
kills and reconciliations that could not be sent while disconnected, and re-applies suppression.
pymesos reconnects by itself after a dropped connection or a leader change; if its thread dies (an
error answer to SUBSCRIBE, say) or the subscription goes silent (no heartbeat), the backend starts a
new driver, after a back-off for the former. A framework the master removed (failover timeout passed)
cannot come back: the backend then registers a new one, reports its id through ``on_framework_id`` and
asks about the old framework's tasks (the master answers LOST). A framework another scheduler took over
("Framework failed over") is left to it: this backend stops talking to the master.

Status updates reach the sink in order per task and are acknowledged after the sink returned
(``updates.py``); the hostname in each status is the one of the agent the task runs on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from libs.errors import NotFound, Unavailable
from services.scheduler.ports import (
    ClusterBackend,
    Host,
    LaunchSpec,
    StatusSink,
    TaskState,
    TaskStatus,
    TaskUsage,
)

from . import http
from .agents import AgentRef, Agents
from .calls import CallFailed, MasterCalls, NotSubscribed
from .config import MesosBackendConfig
from .convert import agent_address, offer_to_host, task_usage, to_task_status
from .driver import Callbacks, SafeDriver
from .taskinfo import OfferPool, task_info
from .updates import Lanes

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]
INVALID_OFFERS = "REASON_INVALID_OFFERS"
TASK_INVALID = "REASON_TASK_INVALID"
RESTART_MAX_SECONDS = 15.0
ENDED_KEPT = 10_000  # ended tasks remembered (for their logs) before the oldest are forgotten
LAST_ERROR_SECONDS = 1.0


@dataclass
class _Task:
    agent_id: str
    hostname: str
    state: TaskState = TaskState.STAGING


@dataclass(frozen=True)
class _Offer:
    host: Host
    resources: list[Json]


class MesosBackend(ClusterBackend):
    kind = "mesos"
    offer_based = True
    checks_health = True

    def host_address(self, host_id: str, hostname: str) -> str:
        """The agent's IP from its offers' url (``ip:port`` of the agent itself), else its hostname."""
        ref = self._agents.get(host_id)
        if ref is not None and ref.address:
            ip = ref.address.rsplit(":", 1)[0].strip("[]")
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                return hostname  # the url named a host, not an address
            return ip
        return hostname

    def __init__(
        self,
        config: MesosBackendConfig,
        on_framework_id: Callable[[str], Awaitable[None]] | None = None,
        on_capacity: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.framework_id: str | None = config.framework_id or None
        self._on_framework_id = on_framework_id
        self._on_capacity = on_capacity
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: StatusSink | None = None
        self._driver: SafeDriver | None = None
        self._master = ""  # host:port of the master we are subscribed to (pymesos follows the leader)
        self._generation = 0
        self._subscribed = asyncio.Event()
        self._ready: asyncio.Future[None] | None = None
        self._problem = ""  # the last reason we are not subscribed, for start()'s error
        self._stopping = False
        self._restart_delay = 1.0
        self._restarting = False
        self._register_anew = False  # the master removed our framework: subscribe without its id
        self._superseded = False  # another scheduler took our framework over: stay away
        self._offers: dict[str, _Offer] = {}
        self._tasks: dict[str, _Task] = {}
        self._ended: deque[str] = deque()
        self._offers_wanted = True
        self._pending_kills: dict[str, float] = {}
        self._pending_reconcile: set[str] = set()
        self._inbox: deque[tuple[int, str, Any]] = deque()
        self._inbox_lock = threading.Lock()
        self._inbox_scheduled = False
        self._calls = MasterCalls()
        self._lanes = Lanes(self._deliver, config.max_concurrent_updates)
        self._jobs: set[asyncio.Task[None]] = set()
        self._agents = Agents(config.agent_timeout)
        self._heard_at = 0.0  # loop time of the last event from the current driver

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, sink: StatusSink) -> None:
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        self._stopping = self._superseded = False
        self._ready = self._loop.create_future()
        await self._probe_master()
        self._spawn(self._watch_heartbeats())
        try:
            async with asyncio.timeout(self.config.subscribe_timeout):
                await self._start_driver()
                await asyncio.shield(self._ready)
        except TimeoutError:
            await self.stop()
            why = f": {self._problem}" if self._problem else ""
            raise Unavailable(
                f"no subscription to the Mesos master at {self.config.master} within "
                f"{self.config.subscribe_timeout:.0f}s{why}",
                hint="check BAY_MESOS_MASTER and that the master is up and elected",
            ) from None
        except BaseException:
            await self.stop()
            raise

    async def _probe_master(self) -> None:
        """Fail at once, with the reason, when nothing listens at the master's address."""
        master = self.config.master_address
        probe = http.Pool(min(5.0, self.config.subscribe_timeout))
        try:
            conn = await probe.connection(master)
        except http.HttpError as exc:
            raise Unavailable(
                f"cannot reach the Mesos master at {self.config.master}: {exc}",
                hint="check BAY_MESOS_MASTER and that the master is up",
            ) from exc
        try:
            answer = await asyncio.wait_for(conn.send(http.get(master, "/version")), probe.timeout)
            if answer.status != 200:  # it listens; the driver keeps trying within the timeout
                self._problem = f"GET /version answered {answer.status}"
        except (http.HttpError, TimeoutError) as exc:
            self._problem = f"GET /version: {exc or type(exc).__name__}"
        finally:
            await probe.close()

    def _framework_info(self) -> Json:
        info: Json = {
            "user": self.config.user,
            "name": self.config.framework_name,
            "failover_timeout": self.config.failover_timeout,
            "checkpoint": True,
            "hostname": socket.gethostname(),
        }
        if self.config.role != "*":
            info["role"] = self.config.role
        if self.framework_id and not self._register_anew:
            info["id"] = {"value": self.framework_id}
        return info

    async def _start_driver(self) -> None:
        self._generation += 1
        generation = self._generation

        def post(kind: str, payload: Any) -> None:
            self._post(generation, kind, payload)

        driver = SafeDriver(
            Callbacks(post),
            self._framework_info(),
            self.config.master_address,
            on_thread_died=lambda exc: post("died", exc),
        )
        self._driver = driver
        await asyncio.to_thread(driver.start)

    async def _stop_driver(self, timeout: float = 2.0) -> None:
        driver, self._driver = self._driver, None
        self._generation += 1  # whatever the old driver still says is ignored
        self._subscribed.clear()
        self._offers.clear()
        if driver is not None:
            await asyncio.to_thread(driver.stop)  # pymesos' lock: never taken on the loop
            if not await asyncio.to_thread(driver.join_for, timeout):
                log.debug("pymesos' thread is still in a back-off sleep; it ends by itself")

    async def stop(self) -> None:
        """Disconnect without tearing the framework down: the tasks keep running, and a backend started
        with the same framework id (within the failover timeout) takes them over."""
        self._stopping = True
        await self._lanes.close()
        await self._calls.drain(2.0)  # what the sink has is acknowledged first
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        await self._calls.close()
        await self._agents.close()
        await self._stop_driver()
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()

    # -- events from pymesos' thread ---------------------------------------------------------------

    def _post(self, generation: int, kind: str, payload: Any) -> None:
        """On pymesos' thread: queue the event; the loop is woken once per batch."""
        with self._inbox_lock:
            self._inbox.append((generation, kind, payload))
            if self._inbox_scheduled:
                return
            self._inbox_scheduled = True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._drain_inbox)

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._inbox_scheduled = False
        offers_came = False
        for generation, kind, payload in items:
            if generation != self._generation or self._stopping:
                continue
            self._heard_at = asyncio.get_running_loop().time()
            try:
                if kind == "update":
                    self._lanes.push(payload)
                elif kind == "offers":
                    offers_came |= self._on_offers(payload)
                else:
                    self._on_event(kind, payload)
            except Exception:
                log.exception("handling Mesos %s failed", kind)
        if offers_came and self._on_capacity is not None:
            try:
                self._on_capacity()
            except Exception:
                log.exception("on_capacity failed")

    def _on_event(self, kind: str, payload: Any) -> None:
        if kind == "subscribed":
            framework_id, self._master, stream_id = payload
            self._calls.subscribed(self._master, framework_id, stream_id)
            self._on_subscribed(framework_id)
        elif kind == "disconnected":
            if self._subscribed.is_set():
                log.warning("subscription to the Mesos master lost; pymesos reconnects")
            self._subscribed.clear()
            self._calls.unsubscribed()
            self._offers.clear()  # the master takes back outstanding offers
        elif kind == "rescinded":
            self._offers.pop(payload, None)
        elif kind == "agent_lost":
            self._on_agent_lost(payload)
        elif kind == "executor_lost":
            log.warning("executor %s on agent %s lost (status %s)", *payload)
        elif kind == "error":
            self._on_error(str(payload))
        elif kind == "died":
            self._on_driver_died(payload)
        # heartbeat: being heard is all it says

    def _on_subscribed(self, framework_id: str) -> None:
        previous = self.framework_id
        self.framework_id = framework_id
        self._register_anew = False
        self._subscribed.set()
        self._problem = ""
        self._restart_delay = 1.0
        log.info("subscribed to the Mesos master as framework %s", framework_id)
        self._spawn(self._after_subscribe(framework_id, previous))

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
        if not self._offers_wanted:
            await self._call("SUPPRESS", {"roles": [self.config.role]})
        for task_id, grace in list(self._pending_kills.items()):
            await self.kill(task_id, grace)
        explicit = set(self._pending_reconcile)
        if previous is not None and framework_id != previous:
            explicit |= {tid for tid, t in self._tasks.items() if not t.state.terminal}  # old framework's
        self._pending_reconcile.clear()
        if explicit:
            await self.reconcile(sorted(explicit))
        await self.reconcile([])

    def _on_offers(self, offers: list[Json]) -> bool:
        fresh: list[str] = []
        for offer in offers:
            try:
                host = offer_to_host(offer)
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed offer: %.300r", offer)
                continue
            assert host.offer_id is not None
            self._agents.learn(host.host_id, host.hostname, agent_address(offer))
            self._offers[host.offer_id] = _Offer(host, list(offer.get("resources", [])))
            fresh.append(host.offer_id)
        if fresh and not self._offers_wanted:  # offers already on their way when we suppressed
            self._spawn(self.decline(fresh, self.config.idle_refuse_seconds))
            return False
        return bool(fresh)

    def _on_agent_lost(self, agent_id: str) -> None:
        """The master sends LOST updates for the agent's tasks; asking about them explicitly as well
        makes sure each one ends up terminal in the sink whatever the master version does."""
        for offer_id in [o for o, offer in self._offers.items() if offer.host.host_id == agent_id]:
            del self._offers[offer_id]
        ours = [tid for tid, t in self._tasks.items() if t.agent_id == agent_id and not t.state.terminal]
        log.warning("agent %s lost with %d of our tasks", agent_id, len(ours))
        if ours:
            self._spawn(self.reconcile(ours))

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
            self._spawn(self._stop_driver())
        else:
            log.error("the Mesos master reported an error: %s", message)

    async def _watch_heartbeats(self) -> None:
        """Re-subscribe when a subscription stays silent too long (pymesos waits on it for ever)."""
        loop = asyncio.get_running_loop()
        timeout = self.config.heartbeat_timeout
        while not self._stopping:
            await asyncio.sleep(min(timeout / 4, 5.0))
            if self._subscribed.is_set() and loop.time() - self._heard_at > timeout and self._driver:
                log.warning("nothing from the Mesos master for %.0fs; subscribing again", timeout)
                self._problem = "the subscription went silent"
                self._subscribed.clear()
                self._calls.unsubscribed()
                self._offers.clear()
                self._restart_soon(0.0)

    def _on_driver_died(self, exc: BaseException | None) -> None:
        self._problem = f"pymesos stopped: {exc!r}"
        log.error("pymesos' thread stopped (%r); a new driver in %.0fs", exc, self._restart_delay)
        self._subscribed.clear()
        self._calls.unsubscribed()
        self._offers.clear()
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

        self._spawn(restart())

    # -- status updates ----------------------------------------------------------------------------

    async def _deliver(self, raw: Json) -> None:
        """One update into the sink, then its acknowledgement; never raises."""
        try:
            status = await self._status_of(raw)
            self._track(status)
            assert self._sink is not None
            await self._sink(status)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("status update %.300r not taken; not acknowledged (the agent re-sends)", raw)
            return
        if raw.get("uuid") and raw.get("agent_id"):
            self._calls.acknowledge(raw)

    async def _status_of(self, raw: Json) -> TaskStatus:
        agent_id = (raw.get("agent_id") or {}).get("value", "")
        task = self._tasks.get(raw["task_id"]["value"])
        hostname = ""
        if task is not None and task.agent_id == agent_id:
            hostname = task.hostname
        elif agent_id:
            ref = await self._agent(agent_id)
            hostname = ref.hostname if ref else ""
        status = to_task_status(raw, hostname, self._clock())
        if status.state is TaskState.FAILED and raw.get("source") == "SOURCE_EXECUTOR" and agent_id:
            line = await self._last_error_line(status.task_id, agent_id)
            if line and line not in status.message:
                status = replace(status, message=f"{status.message}: {line}" if status.message else line)
        return status

    def _track(self, status: TaskStatus) -> None:
        task = self._tasks.get(status.task_id)
        if task is None:
            if not status.host_id:
                return  # an unknown task the master knows nothing of either
            task = self._tasks[status.task_id] = _Task(status.host_id, status.hostname)
        elif status.host_id and status.host_id != task.agent_id:
            task.agent_id, task.hostname = status.host_id, status.hostname
        was_terminal = task.state.terminal
        task.state = status.state
        if status.state.terminal:
            self._pending_kills.pop(status.task_id, None)
            if not was_terminal:
                self._ended.append(status.task_id)
                while len(self._ended) > ENDED_KEPT:
                    old = self._ended.popleft()
                    if (t := self._tasks.get(old)) is not None and t.state.terminal:
                        del self._tasks[old]

    async def _last_error_line(self, task_id: str, agent_id: str) -> str:
        """The failed task's last stderr line, as the local backend puts it in the message; "" if the
        agent does not answer quickly (the status is not held up for long)."""
        ref = await self._agent(agent_id)
        if ref is None or not ref.address or not self.framework_id:
            return ""
        try:
            async with asyncio.timeout(LAST_ERROR_SECONDS):
                return await self._agents.last_line(ref, self._sandbox_path(task_id, "stderr"))
        except (TimeoutError, NotFound, Unavailable, ValueError):
            return ""

    # -- offers and launching ----------------------------------------------------------------------

    async def capacity(self) -> list[Host]:
        return [offer.host for offer in self._offers.values()]

    async def launch(self, tasks: list[LaunchSpec]) -> None:
        """One ACCEPT per offer with all of its tasks; tasks that cannot be sent are reported LOST
        (or ERROR when the spec itself is wrong) through the sink, like the master would."""
        by_offer: dict[str | None, list[LaunchSpec]] = {}
        for spec in tasks:
            by_offer.setdefault(spec.offer_id, []).append(spec)
        failed: list[Json] = []
        accepts: list[tuple[str, list[Json]]] = []
        empty: list[str] = []
        for offer_id, specs in by_offer.items():
            if offer_id is None:
                failed += [
                    self._made_up(s, "TASK_LOST", INVALID_OFFERS, "a Mesos launch needs an offer")
                    for s in specs
                ]
                continue
            offer = self._offers.pop(offer_id, None)
            pool = OfferPool(offer.resources if offer else [])
            infos: list[Json] = []
            for spec in specs:
                hostname = offer.host.hostname if offer else self._hostname_of(spec.host_id)
                try:
                    infos.append(task_info(spec, hostname, pool, self.config.docker_network))
                except ValueError as exc:
                    failed.append(self._made_up(spec, "TASK_ERROR", TASK_INVALID, str(exc)))
                    continue
                self._tasks[spec.task_id] = _Task(spec.host_id, hostname)
            if infos:
                accepts.append((offer_id, infos))
            else:
                empty.append(offer_id)
        unsure: list[str] = []
        if accepts:
            for offer_id, infos, why, answered in await self._accept(accepts):
                if not answered:  # sent, maybe taken: only the master knows
                    unsure += [info["task_id"]["value"] for info in infos]
                    continue
                for info in infos:
                    failed.append(
                        self._made_up_json(info, "TASK_LOST", INVALID_OFFERS, f"offer {offer_id}: {why}")
                    )
        if unsure:
            await self.reconcile(unsure)
        if empty:
            await self.decline(empty, 0.0)
        for raw in failed:
            self._lanes.push(raw)

    async def _accept(self, accepts: list[tuple[str, list[Json]]]) -> list[tuple[str, list[Json], str, bool]]:
        """Send the ACCEPTs, pipelined. The ones that failed: why, and whether that is certain (not
        sent, or refused by the master) or not (no answer: the master may have launched them)."""

        async def one(offer_id: str, infos: list[Json]) -> tuple[str, bool]:
            body = {
                "offer_ids": [{"value": offer_id}],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": infos}}],
                "filters": {"refuse_seconds": 0.0},  # the rest of the agent may take more tasks
            }
            try:
                await self._calls.call("ACCEPT", body)
                return "", True
            except NotSubscribed as exc:
                return str(exc), True
            except CallFailed as exc:
                return str(exc), exc.status != 0

        answers = await asyncio.gather(*(one(offer_id, infos) for offer_id, infos in accepts))
        return [
            (offer_id, infos, why, certain)
            for (offer_id, infos), (why, certain) in zip(accepts, answers, strict=True)
            if why
        ]

    def _made_up(self, spec: LaunchSpec, state: str, reason: str, message: str) -> Json:
        info = {"task_id": {"value": spec.task_id}, "agent_id": {"value": spec.host_id}}
        return self._made_up_json(info, state, reason, message)

    def _made_up_json(self, info: Json, state: str, reason: str, message: str) -> Json:
        """A status the backend makes up where the master would have (no uuid: nothing to ack)."""
        return {
            "task_id": info["task_id"],
            "agent_id": info.get("agent_id") or {},
            "state": state,
            "reason": reason,
            "message": message,
            "source": "SOURCE_MASTER",
            "timestamp": self._clock(),
        }

    def _hostname_of(self, agent_id: str) -> str:
        ref = self._agents.get(agent_id)
        return ref.hostname if ref else ""

    async def decline(self, offer_ids: list[str], refuse_seconds: float) -> None:
        for offer_id in offer_ids:
            self._offers.pop(offer_id, None)
        if offer_ids:
            body = {
                "offer_ids": [{"value": o} for o in offer_ids],
                "filters": {"refuse_seconds": refuse_seconds},
            }
            await self._call("DECLINE", body)  # not subscribed: the master took them back already

    async def want_offers(self, wanted: bool) -> None:
        if wanted == self._offers_wanted:
            return
        self._offers_wanted = wanted
        if wanted:
            await self._call("REVIVE", {"roles": [self.config.role]})
            return
        held = list(self._offers)
        if held:
            await self.decline(held, self.config.idle_refuse_seconds)
        await self._call("SUPPRESS", {"roles": [self.config.role]})

    # -- kill and reconcile ------------------------------------------------------------------------

    async def kill(self, task_id: str, grace_seconds: float = 10.0) -> None:
        """A KILL call with the grace as kill policy; while disconnected, sent after re-subscribing."""
        body: Json = {
            "task_id": {"value": task_id},
            "kill_policy": {"grace_period": {"nanoseconds": int(max(grace_seconds, 0.0) * 1e9)}},
        }
        task = self._tasks.get(task_id)
        if task is not None and task.agent_id:
            body["agent_id"] = {"value": task.agent_id}
        self._pending_kills[task_id] = grace_seconds
        if await self._call("KILL", body):
            self._pending_kills.pop(task_id, None)

    async def reconcile(self, task_ids: list[str]) -> None:
        """Ask the master; its answers come as updates with REASON_RECONCILIATION."""
        tasks: list[Json] = []
        for task_id in task_ids:
            item: Json = {"task_id": {"value": task_id}}
            task = self._tasks.get(task_id)
            if task is not None and task.agent_id:
                item["agent_id"] = {"value": task.agent_id}
            tasks.append(item)
        if not await self._call("RECONCILE", {"tasks": tasks}):
            self._pending_reconcile.update(task_ids)  # implicit reconciliation follows any subscription

    async def _call(self, kind: str, body: Json) -> bool:
        """One call, in order with the others; False if it could not be made."""
        if not self._subscribed.is_set():
            return False
        try:
            await self._calls.call(kind, body)
            return True
        except NotSubscribed:
            return False
        except CallFailed as exc:
            log.warning("Mesos %s call failed: %s", kind, exc)
            return False

    # -- agents: usage and logs --------------------------------------------------------------------

    async def _agent(self, agent_id: str) -> AgentRef | None:
        return await self._agents.lookup(agent_id, self._master or self.config.master_address)

    async def usage(self) -> list[TaskUsage]:
        """Each agent's ``/monitor/statistics``, for this framework's running tasks (one executor each)."""
        running: dict[str, _Task] = {
            tid: t for tid, t in self._tasks.items() if t.state in (TaskState.RUNNING, TaskState.KILLING)
        }
        by_agent: dict[str, set[str]] = {}
        for tid, task in running.items():
            by_agent.setdefault(task.agent_id, set()).add(tid)
        results = await asyncio.gather(*(self._agent_usage(a, ids) for a, ids in by_agent.items()))
        return [u for found in results for u in found]

    async def _agent_usage(self, agent_id: str, task_ids: set[str]) -> list[TaskUsage]:
        ref = await self._agent(agent_id)
        if ref is None or not ref.address:
            return []
        try:
            entries = await self._agents.statistics(ref)
        except (http.HttpError, ValueError) as exc:
            log.debug("no statistics from agent %s: %s", ref.hostname, exc)
            return []
        now = self._clock()
        return [
            task_usage(tid, entry, now)
            for entry in entries
            if entry.get("framework_id") == self.framework_id
            and (tid := entry.get("executor_id") or entry.get("source")) in task_ids
        ]

    def _sandbox_path(self, task_id: str, stream: str) -> str:
        # Command and Docker tasks run under the command executor, whose id is the task id.
        return f"/frameworks/{self.framework_id}/executors/{task_id}/runs/latest/{stream}"

    async def logs(
        self, task_id: str, stream: str = "stdout", *, tail: int = 100, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """The sandbox file through the agent's ``/files/read``: the tail, then (following) new output
        every half second until the task has ended."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"unknown log stream {stream!r} (stdout or stderr)")
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id} is unknown to the Mesos backend")
        ref = await self._agent(task.agent_id)
        if ref is None or not ref.address:
            raise Unavailable(f"no address for agent {task.agent_id} of task {task_id}")
        path = self._sandbox_path(task_id, stream)
        async for chunk in self._agents.read_log(ref, path, tail, follow, lambda: task.state.terminal):
            yield chunk

    # -- helpers -----------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    @property
    def acknowledged(self) -> int:
        """Acknowledgements the master took so far (for operators and benchmarks)."""
        return self._calls.acknowledged
