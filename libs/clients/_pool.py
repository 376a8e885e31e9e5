"""Every configured cluster's scheduler (``BAY_SCHEDULERS``), one channel each, opened at once."""

from __future__ import annotations

import asyncio
import copy
from typing import Self

from bay.v1 import fold_pb2

from libs.clients._caller import Caller
from libs.clients._scheduler import SchedulerClient
from libs.errors import Unavailable


class SchedulerPool:
    """``SchedulerPool({"local": "127.0.0.1:50061", "eu": "..."}, timeout=2.0)``.

    ``pool.of(cluster)`` is that cluster's scheduler for the pool's caller; which cluster a group
    or a task is on is :func:`~libs.clients.group_scheduler` / :func:`~libs.clients.find_task`.
    """

    def __init__(
        self,
        addresses: dict[str, str],
        *,
        timeout: float,
        caller: Caller | None = None,
        configured_by: str = "this service",
    ) -> None:
        self.caller = caller or Caller()
        self.configured_by = configured_by
        self.clients = {
            cluster: SchedulerClient(cluster, addr, timeout=timeout, configured_by=configured_by)
            for cluster, addr in addresses.items()
        }

    @property
    def clusters(self) -> list[str]:
        return sorted(self.clients)

    def with_caller(self, caller: Caller) -> Self:
        """The pool on behalf of ``caller``; it shares the channels (close only the one opened)."""
        twin = copy.copy(self)
        twin.caller = caller
        return twin

    def of(self, cluster: str) -> SchedulerClient:
        """The cluster's scheduler; Unavailable when no scheduler is configured for it."""
        found = self.clients.get(cluster)
        if found is None:
            raise Unavailable(
                f"{self.configured_by} knows no scheduler for cluster {cluster!r}",
                hint=f"add the cluster's scheduler to {self.configured_by}'s BAY_SCHEDULERS "
                f'(JSON: {{"<cluster>": "host:port"}}) and restart {self.configured_by}',
            )
        return found.with_caller(self.caller)

    async def serving(self, timeout: float | None = None) -> dict[str, bool]:
        """Each scheduler's health, asked all at once."""
        answers = await asyncio.gather(*(c.serving(timeout) for c in self.clients.values()))
        return dict(zip(self.clients, answers, strict=True))

    async def fold_status(self, timeout: float | None = None) -> dict[str, fold_pb2.FoldStatusReply | None]:
        """Each scheduler's fold of the log, asked all at once."""
        answers = await asyncio.gather(*(c.fold_status(timeout) for c in self.clients.values()))
        return dict(zip(self.clients, answers, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()))
