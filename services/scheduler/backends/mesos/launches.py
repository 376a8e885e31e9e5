"""Launches: the scheduler's LaunchSpecs matched to the offers they name, one ACCEPT per offer.

Every task launched ends up with a status in the sink, as the port promises, even where the master
never hears of it: a launch without an offer, or through an offer no longer held, or whose ACCEPT the
master refused, is reported TASK_LOST (REASON_INVALID_OFFERS), and a spec that cannot become a TaskInfo
TASK_ERROR (REASON_TASK_INVALID), statuses made up the way the master would make them. An ACCEPT that
got no answer may have been taken: those tasks are reconciled instead, and only the master says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from services.scheduler.ports import LaunchSpec

from .agents import Agents
from .calls import CallFailed, MasterCalls, NotSubscribed
from .config import MesosBackendConfig
from .offers import Offers
from .taskinfo import OfferPool, task_info
from .tasks import TaskTable

Json = dict[str, Any]
INVALID_OFFERS = "REASON_INVALID_OFFERS"
TASK_INVALID = "REASON_TASK_INVALID"


def made_up_status(task_id: str, agent_id: str, state: str, reason: str, message: str, now: float) -> Json:
    """A status the backend makes up where the master would have (no uuid: nothing to acknowledge)."""
    return {
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id} if agent_id else {},
        "state": state,
        "reason": reason,
        "message": message,
        "source": "SOURCE_MASTER",
        "timestamp": now,
    }


class Launcher:
    """``report`` takes the made-up statuses (to the sink, like the master's); ``reconcile`` asks the
    master about tasks whose ACCEPT may or may not have been taken."""

    def __init__(
        self,
        config: MesosBackendConfig,
        calls: MasterCalls,
        offers: Offers,
        agents: Agents,
        tasks: TaskTable,
        report: Callable[[Json], None],
        reconcile: Callable[[list[str]], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self._calls = calls
        self._offers = offers
        self._agents = agents
        self._tasks = tasks
        self._report = report
        self._reconcile = reconcile
        self._clock = clock

    async def launch(self, tasks: list[LaunchSpec]) -> None:
        by_offer: dict[str | None, list[LaunchSpec]] = {}
        for spec in tasks:
            by_offer.setdefault(spec.offer_id, []).append(spec)
        failed: list[Json] = []
        accepts: list[tuple[str, list[Json]]] = []
        empty: list[str] = []
        for offer_id, specs in by_offer.items():
            if offer_id is None:
                why = "a Mesos launch needs an offer"
                failed += [
                    self._failed(s.task_id, s.host_id, "TASK_LOST", INVALID_OFFERS, why) for s in specs
                ]
                continue
            offer = self._offers.take(offer_id)
            pool = OfferPool(offer.resources if offer else [])
            infos: list[Json] = []
            for spec in specs:
                hostname = offer.host.hostname if offer else self._hostname_of(spec.host_id)
                try:
                    infos.append(task_info(spec, hostname, pool, self.config.docker_network))
                except ValueError as exc:
                    failed.append(
                        self._failed(spec.task_id, spec.host_id, "TASK_ERROR", TASK_INVALID, str(exc))
                    )
                    continue
                self._tasks.launched(spec.task_id, spec.host_id)
            if infos:
                accepts.append((offer_id, infos))
            else:
                empty.append(offer_id)
        unsure: list[str] = []
        for offer_id, infos, why, certain in await self._accept(accepts):
            if not certain:  # sent, maybe taken: only the master knows
                unsure += [info["task_id"]["value"] for info in infos]
                continue
            for info in infos:
                task_id, agent_id = info["task_id"]["value"], info["agent_id"]["value"]
                failed.append(
                    self._failed(task_id, agent_id, "TASK_LOST", INVALID_OFFERS, f"offer {offer_id}: {why}")
                )
        if unsure:
            await self._reconcile(unsure)
        if empty:
            await self._offers.decline(empty, 0.0)
        for raw in failed:
            self._report(raw)

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

        if not accepts:
            return []
        answers = await asyncio.gather(*(one(offer_id, infos) for offer_id, infos in accepts))
        return [
            (offer_id, infos, why, certain)
            for (offer_id, infos), (why, certain) in zip(accepts, answers, strict=True)
            if why
        ]

    def _failed(self, task_id: str, agent_id: str, state: str, reason: str, message: str) -> Json:
        return made_up_status(task_id, agent_id, state, reason, message, self._clock())

    def _hostname_of(self, agent_id: str) -> str:
        ref = self._agents.get(agent_id)
        return ref.hostname if ref else ""
