"""The Mesos cluster backend: a framework on the v1 scheduler HTTP API, through pymesos.

:class:`MesosBackend` is the :class:`ClusterBackend` and only puts the parts together, each of which
does one thing:

- ``subscription.py``: the pymesos driver's lifecycle, the framework id, re-subscription, and the
  inbox through which pymesos' thread hands events to the loop (``inbox.py``);
- ``delivery.py``: status updates into the sink, acknowledged only once the sink returned;
- ``offers.py``: the offers held, DECLINE, SUPPRESS and REVIVE; ``launches.py``: launches matched to
  offers, one ACCEPT per offer;
- ``reconcile.py``: KILL with a grace and RECONCILE, kept while disconnected;
- ``agents.py``: where agents are (learnt from offers) and their HTTP endpoints, used by
  :meth:`MesosBackend.host_address`, ``logs.py`` (sandbox files) and ``usage.py`` (statistics);
- ``tasks.py``: the backend's own table of task -> agent, and why it has one.

Calls to the master go from the loop, pipelined on one connection of the backend's own (``calls.py``),
in the order they are made; the subscription itself stays with pymesos.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from services.scheduler.ports import ClusterBackend, Host, LaunchSpec, StatusSink, TaskUsage

from .agents import Agents
from .calls import MasterCalls
from .config import MesosBackendConfig
from .delivery import StatusDelivery
from .jobs import Jobs
from .launches import Launcher
from .logs import TaskLogs
from .offers import Offers
from .reconcile import Reconciler
from .subscription import Hooks, Subscription
from .tasks import TaskTable
from .usage import UsageReader

log = logging.getLogger("bay.scheduler.mesos")


class MesosBackend(ClusterBackend):
    kind = "mesos"
    offer_based = True
    checks_health = True

    def __init__(
        self,
        config: MesosBackendConfig,
        on_framework_id: Callable[[str], Awaitable[None]] | None = None,
        on_capacity: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._jobs = Jobs()
        self._calls = MasterCalls()
        self._tasks = TaskTable()
        self._agents = Agents(config.agent_timeout, master=lambda: self._subscription.master)
        self._reconciler = Reconciler(self._calls, self._tasks, self._jobs)
        self._logs = TaskLogs(self._agents, self._tasks, lambda: self.framework_id)
        self._usage = UsageReader(self._agents, self._tasks, lambda: self.framework_id, clock)
        self._delivery = StatusDelivery(
            self._calls,
            self._agents,
            self._tasks,
            self._logs,
            on_ended=self._reconciler.ended,
            clock=clock,
            max_concurrent=config.max_concurrent_updates,
        )
        self._offers = Offers(config, self._calls, self._agents, self._jobs, on_capacity)
        self._launcher = Launcher(
            config,
            self._calls,
            self._offers,
            self._agents,
            self._tasks,
            report=self._delivery.push,
            reconcile=self._reconciler.reconcile,
            clock=clock,
        )
        hooks = Hooks(
            route=self._route,
            batch_done=self._offers.batch_done,
            offers_void=self._offers.void,
            resubscribed=self._resubscribed,
        )
        self._subscription = Subscription(config, self._calls, self._jobs, hooks, on_framework_id)

    @property
    def framework_id(self) -> str | None:
        return self._subscription.framework_id

    @property
    def subscribed(self) -> bool:
        return self._calls.is_subscribed

    @property
    def acknowledged(self) -> int:
        """Acknowledgements the master took so far (for operators and benchmarks)."""
        return self._calls.acknowledged

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, sink: StatusSink) -> None:
        """Returns once subscribed; then the backend asks for implicit reconciliation, re-sends kills
        and reconciliations that could not be sent while disconnected, and re-applies suppression
        (again after every re-subscription)."""
        self._delivery.start(sink)
        try:
            await self._subscription.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Disconnect without tearing the framework down: the tasks keep running, and a backend started
        with the same framework id (within the failover timeout) takes them over."""
        self._subscription.halt()
        await self._delivery.close()
        await self._calls.drain(2.0)  # what the sink has is acknowledged first
        await self._jobs.cancel()
        await self._calls.close()
        await self._agents.close()
        await self._subscription.close()

    def _route(self, kind: str, payload: Any) -> None:
        """The subscription's events for the other parts, in the order they came."""
        if kind == "update":
            self._delivery.push(payload)
        elif kind == "offers":
            self._offers.add(payload)
        elif kind == "rescinded":
            self._offers.rescind(payload)
        elif kind == "agent_lost":
            self._offers.agent_lost(payload)
            self._reconciler.agent_lost(payload)
        elif kind == "executor_lost":
            log.warning("executor %s on agent %s lost (status %s)", *payload)

    async def _resubscribed(self, new_framework: bool) -> None:
        await self._offers.resubscribed()  # suppression first: no offers come that would be declined
        await self._reconciler.resubscribed(new_framework)

    # -- the port ----------------------------------------------------------------------------------

    def host_address(self, host_id: str, hostname: str) -> str:
        """The agent's IP from its offers' url, else its hostname."""
        return self._agents.host_address(host_id, hostname)

    async def capacity(self) -> list[Host]:
        return self._offers.hosts()

    async def launch(self, tasks: list[LaunchSpec]) -> None:
        """One ACCEPT per offer with all of its tasks; tasks that cannot be sent are reported LOST
        (or ERROR when the spec itself is wrong) through the sink, like the master would."""
        await self._launcher.launch(tasks)

    async def decline(self, offer_ids: list[str], refuse_seconds: float) -> None:
        await self._offers.decline(offer_ids, refuse_seconds)

    async def want_offers(self, wanted: bool) -> None:
        await self._offers.want(wanted)

    async def kill(self, task_id: str, grace_seconds: float = 10.0) -> None:
        await self._reconciler.kill(task_id, grace_seconds)

    async def reconcile(self, task_ids: list[str]) -> None:
        await self._reconciler.reconcile(task_ids)

    async def usage(self) -> list[TaskUsage]:
        return await self._usage.usage()

    def logs(
        self, task_id: str, stream: str = "stdout", *, tail: int = 100, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """The sandbox file through the agent's ``/files/read``; errors come with the first chunk."""
        return self._logs.read(task_id, stream, tail, follow)
