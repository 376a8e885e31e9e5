"""The gRPC clients of Bay's own services, on one base (:class:`ServiceClient`).

Every call has a deadline (``timeout``) and carries the :class:`Caller`'s ``authorization`` and
``x-correlation-id``; a failed call raises the :class:`~libs.errors.BayError` it stands for
(``NotFound``, ``Conflict``, ``ValidationFailed`` with its fields...); a service that is down or
silent is :class:`~libs.errors.Unavailable` naming it, with a hint. For a new service::

    registry = RegistryClient(settings.registry_addr, timeout=3.0, caller=Caller.bearer(token))
    schedulers = SchedulerPool(addresses, timeout=2.0, caller=Caller.bearer(token))
    await registry.scale("web", 5, reason="autoscaler: cpu 93%", idempotency_key=key)
    sched = await group_scheduler(registry, schedulers, "web")
    tasks = await sched.list_tasks("web")
    deployer = DeployerClient(settings.deployer_addr, timeout=3.0, caller=Caller.bearer(token))
    await deployer.deploy("web", build="web-42", idempotency_key=key)

Any other call is ``await client.call(client.stub.Method, request)``.
"""

from libs.clients._autoscaler import AUTOSCALER_SERVICE, AutoscalerClient
from libs.clients._base import Health, ServiceClient
from libs.clients._caller import Caller
from libs.clients._deployer import DEPLOYER_SERVICE, DeployerClient
from libs.clients._dns import DNS_SERVICE, DnsClient
from libs.clients._owners import find_task, group_scheduler
from libs.clients._pool import SchedulerPool
from libs.clients._registry import REGISTRY_SERVICE, RegistryClient
from libs.clients._scheduler import SCHEDULER_SERVICE, SchedulerClient

__all__ = [
    "AUTOSCALER_SERVICE",
    "DEPLOYER_SERVICE",
    "DNS_SERVICE",
    "REGISTRY_SERVICE",
    "SCHEDULER_SERVICE",
    "AutoscalerClient",
    "Caller",
    "DeployerClient",
    "DnsClient",
    "Health",
    "RegistryClient",
    "SchedulerClient",
    "SchedulerPool",
    "ServiceClient",
    "find_task",
    "group_scheduler",
]
