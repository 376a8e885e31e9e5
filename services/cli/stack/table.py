"""The processes ``bay up`` runs, in start order. Adding a service is one line here.

``probe`` (optional) is awaited until it returns: the ready line waits for every probe. ``listen``
(optional) names the setting and address a process binds, checked free before anything starts.
``args`` and ``env`` add to the command line and to the environment every process gets; a scheduler
names its ``cluster``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from services.cli.stack import readiness
from services.cli.stack.settings import StackSettings

Probe = Callable[[StackSettings], Awaitable[None]]
Listen = Callable[[StackSettings], tuple[str, str]]
Args = Callable[[StackSettings], list[str]]
Env = Callable[[StackSettings], dict[str, str]]

#: the checkout ``bay`` runs from: the Mesos simulator lives in its tests, not in the installed package
SOURCE_ROOT = Path(__file__).resolve().parents[3]
SIM_MODULE = "tests.mesos_sim"


@dataclass(frozen=True)
class ServiceProcess:
    name: str  # how the supervisor's output names it
    module: str  # run as `python -m <module>`
    probe: Probe | None = None
    listen: Listen | None = None
    args: Args | None = None
    env: Env | None = field(default=None, compare=False)
    cluster: str = ""  # a scheduler: the cluster it runs
    nats_user: str = ""  # its user on the embedded nats-server (libs.natsperms); "": it uses no NATS

    @property
    def nats_role(self) -> str:
        return f"scheduler-{self.cluster}" if self.cluster else self.nats_user


SERVICES: tuple[ServiceProcess, ...] = (
    ServiceProcess("registry", "services.registry", readiness.registry_serving, nats_user="registry"),
    ServiceProcess(
        "scheduler",
        "services.scheduler",
        readiness.scheduler_serving,
        listen=lambda s: ("BAY_SCHEDULER_LISTEN", s.scheduler_listen),
        cluster="local",
    ),
    ServiceProcess(
        "dns",
        "services.dns",
        readiness.dns_serving,
        listen=lambda s: ("BAY_DNS_LISTEN", s.dns_listen),
        nats_user="dns",
    ),
    ServiceProcess(
        "deployer",
        "services.deployer",
        readiness.deployer_serving,
        listen=lambda s: ("BAY_DEPLOYER_LISTEN", s.deployer_listen),
        nats_user="deployer",
    ),
    ServiceProcess(
        "autoscaler",
        "services.autoscaler",
        readiness.autoscaler_serving,
        listen=lambda s: ("BAY_AUTOSCALER_LISTEN", s.autoscaler_listen),
        nats_user="autoscaler",
    ),
    ServiceProcess("gateway", "services.gateway", readiness.gateway_healthy, nats_user="gateway"),
    ServiceProcess("audit", "services.gateway.audit", nats_user="audit"),
)


def sim_processes(settings: StackSettings) -> tuple[ServiceProcess, ...]:
    """``--sim-cluster NAME``: a Mesos master simulator, and the scheduler of cluster NAME on it."""
    name = settings.sim_cluster
    return (
        ServiceProcess(
            "mesos-sim",
            SIM_MODULE,
            readiness.sim_master_answering,
            listen=lambda s: ("BAY_SIM_PORT", s.sim_master_address),
            args=lambda s: [
                "--port",
                str(s.sim_port),
                "--agents",
                str(s.sim_agents),
                *(["--run-commands"] if s.sim_run_commands else []),
            ],
            env=lambda s: {"PYTHONPATH": str(SOURCE_ROOT)},
        ),
        ServiceProcess(
            f"scheduler-{name}",
            "services.scheduler",
            partial(readiness.scheduler_serving, address=settings.schedulers[name]),
            listen=lambda s: ("BAY_SIM_SCHEDULER_LISTEN", s.sim_scheduler_listen),
            env=lambda s: {"BAY_CLUSTER": name, "BAY_SCHEDULER_LISTEN": s.sim_scheduler_listen},
            cluster=name,
        ),
    )


def services_for(settings: StackSettings) -> tuple[ServiceProcess, ...]:
    """What ``bay up`` runs with these settings."""
    return SERVICES + (sim_processes(settings) if settings.sim_cluster else ())
