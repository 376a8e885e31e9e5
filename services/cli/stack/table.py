"""The processes ``bay up`` runs, in start order. Adding a service is one line here.

``probe`` (optional) is awaited until it returns: the ready line waits for every probe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.cli.stack import readiness
from services.cli.stack.settings import StackSettings

Probe = Callable[[StackSettings], Awaitable[None]]


@dataclass(frozen=True)
class ServiceProcess:
    name: str  # how the supervisor's output names it
    module: str  # run as `python -m <module>`
    probe: Probe | None = None


SERVICES: tuple[ServiceProcess, ...] = (
    ServiceProcess("registry", "services.registry", readiness.registry_serving),
    ServiceProcess("gateway", "services.gateway", readiness.gateway_healthy),
    ServiceProcess("audit", "services.gateway.audit"),
)
