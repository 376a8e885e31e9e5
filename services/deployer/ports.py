"""The deployer's ports: the registry it commands and the DNS it asks (metrics: domain.analysis)."""

from __future__ import annotations

import abc

from libs.spec import GroupSpec
from services.deployer.domain.plan import Target


class RegistryPort(abc.ABC):
    """The registry's commands the deployer sends; each with an idempotency key, so a retry after
    a crash is carried out once."""

    @abc.abstractmethod
    async def update_group(self, spec: GroupSpec, *, key: str) -> int:
        """The version the registry holds the spec as (a repeat of the key: the first answer's)."""

    @abc.abstractmethod
    async def rollback_group(self, name: str, version: int, *, key: str) -> None: ...

    @abc.abstractmethod
    async def set_rollout(
        self, name: str, targets: tuple[Target, ...], *, deployment: str, reason: str, key: str
    ) -> None: ...


class DnsPort(abc.ABC):
    @abc.abstractmethod
    async def answers(self, service: str, cluster: str) -> frozenset[str] | None:
        """The task ids DNS answers for the service now; None: no DNS to ask."""


class NoDns(DnsPort):
    async def answers(self, service: str, cluster: str) -> frozenset[str] | None:
        return None
