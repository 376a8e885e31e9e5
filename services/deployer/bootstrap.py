"""The one place the deployer is wired: the projection, the service layer and its ports (tests call
it with fakes or with real adapters)."""

from __future__ import annotations

import time
from collections.abc import Callable

from libs.eventlog import EventLog
from libs.views.live import open_view
from services.deployer.domain.analysis import MetricSource
from services.deployer.ports import DnsPort, RegistryPort
from services.deployer.service_layer.deployer import Deployer
from services.deployer.service_layer.view import DeployerView


async def bootstrap(
    event_log: EventLog,
    registry: RegistryPort,
    *,
    clock: Callable[[], float] = time.time,
    metrics: MetricSource | None = None,
    dns: DnsPort | None = None,
) -> Deployer:
    """A deployer over the whole log, replayed (current when this returns); run ``deployer.run``."""
    projection = await open_view(event_log, "deployer", DeployerView)
    return Deployer(event_log, projection, registry, clock=clock, metrics=metrics, dns=dns)
