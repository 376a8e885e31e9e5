"""The autoscaler's port to the registry (the metric sources are adapters.observe)."""

from __future__ import annotations

import abc


class ScalePort(abc.ABC):
    @abc.abstractmethod
    async def scale(self, group: str, instances: int, *, reason: str, key: str) -> int:
        """Ask for ``instances`` of the group; the stream sequence of the registry's event (a repeat
        of ``key``: the first answer's)."""
