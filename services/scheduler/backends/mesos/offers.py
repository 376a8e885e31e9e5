"""The offers the framework holds: capacity for the scheduler, declined or suppressed when unwanted.

An offer is held from its OFFERS event until it is used by a launch (``launches.py``), declined,
rescinded, or void (no subscription: the master takes outstanding offers back; an agent lost). Each
offer also tells where its agent listens (``agents.py``). While nothing is pending the framework
SUPPRESSes, declining what it holds with the idle filter, and REVIVEs when something is; suppression is
re-applied after every subscription, since the master forgets it with the framework's connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.scheduler.ports import Host

from .agents import Agents
from .calls import MasterCalls
from .config import MesosBackendConfig
from .convert import agent_address, offer_to_host
from .jobs import Jobs

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]


@dataclass(frozen=True)
class HeldOffer:
    host: Host
    resources: list[Json]  # as offered: a launch takes its tasks' resources from these entries


class Offers:
    """``on_capacity`` is called once per batch of events that brought wanted offers."""

    def __init__(
        self,
        config: MesosBackendConfig,
        calls: MasterCalls,
        agents: Agents,
        jobs: Jobs,
        on_capacity: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._calls = calls
        self._agents = agents
        self._jobs = jobs
        self._on_capacity = on_capacity
        self._held: dict[str, HeldOffer] = {}
        self._wanted = True
        self._fresh = False  # wanted offers came since the last batch_done

    def hosts(self) -> list[Host]:
        return [offer.host for offer in self._held.values()]

    def add(self, offers: list[Json]) -> None:
        fresh: list[str] = []
        for offer in offers:
            try:
                host = offer_to_host(offer)
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed offer: %.300r", offer)
                continue
            assert host.offer_id is not None
            self._agents.learn(host.host_id, host.hostname, agent_address(offer))
            if self._wanted:
                self._held[host.offer_id] = HeldOffer(host, list(offer.get("resources", [])))
            fresh.append(host.offer_id)
        if fresh and not self._wanted:  # offers already on their way when we suppressed
            self._jobs.spawn(self.decline(fresh, self.config.idle_refuse_seconds))
            return
        self._fresh |= bool(fresh)

    def batch_done(self) -> None:
        fresh, self._fresh = self._fresh, False
        if fresh and self._on_capacity is not None:
            try:
                self._on_capacity()
            except Exception:
                log.exception("on_capacity failed")

    def take(self, offer_id: str) -> HeldOffer | None:
        """The offer, for a launch: it is good once, held no more."""
        return self._held.pop(offer_id, None)

    def rescind(self, offer_id: str) -> None:
        self._held.pop(offer_id, None)

    def void(self) -> None:
        self._held.clear()

    def agent_lost(self, agent_id: str) -> None:
        for offer_id in [o for o, offer in self._held.items() if offer.host.host_id == agent_id]:
            del self._held[offer_id]

    async def decline(self, offer_ids: list[str], refuse_seconds: float) -> None:
        for offer_id in offer_ids:
            self._held.pop(offer_id, None)
        if offer_ids:
            body = {
                "offer_ids": [{"value": o} for o in offer_ids],
                "filters": {"refuse_seconds": refuse_seconds},
            }
            await self._calls.send("DECLINE", body)  # not subscribed: the master took them back already

    async def want(self, wanted: bool) -> None:
        if wanted == self._wanted:
            return
        self._wanted = wanted
        if wanted:
            await self._calls.send("REVIVE", {"roles": [self.config.role]})
            return
        held = list(self._held)
        if held:
            await self.decline(held, self.config.idle_refuse_seconds)
        await self._calls.send("SUPPRESS", {"roles": [self.config.role]})

    async def resubscribed(self) -> None:
        if not self._wanted:
            await self._calls.send("SUPPRESS", {"roles": [self.config.role]})
