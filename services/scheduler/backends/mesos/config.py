"""Settings of one Mesos cluster as the scheduler sees it: where the master is and how to subscribe."""

from __future__ import annotations

from dataclasses import dataclass

from libs import defaults
from libs.addresses import format_host_port, parse_host_port


@dataclass(frozen=True)
class MesosBackendConfig:
    """Built by the scheduler service from its BAY_* settings; the backend never reads the environment.

    ``framework_id`` comes from the event log: subscribing with it keeps the tasks of a previous run
    (within ``failover_timeout``). ``refuse_seconds`` and ``idle_refuse_seconds`` are the decline filters
    the service uses while something is pending and while nothing is; the backend itself declines with
    ``idle_refuse_seconds`` the offers it holds when it suppresses. ``docker_network`` is BRIDGE (host
    ports mapped to container ports), HOST or NONE. ``subscribe_timeout`` bounds :meth:`start`.
    ``heartbeat_timeout``: pymesos does not notice a subscription that went silent (a half-open
    connection); the backend re-subscribes when nothing, not even a heartbeat, came for that long.
    """

    master: str  # "host:port" or "http://host:port"
    cluster: str  # the framework is named "bay-<cluster>"
    user: str = "root"
    role: str = "*"
    framework_id: str | None = None
    failover_timeout: float = 7 * 24 * 3600.0
    refuse_seconds: float = 5.0
    idle_refuse_seconds: float = 60.0
    docker_network: str = "BRIDGE"
    subscribe_timeout: float = 15.0
    heartbeat_timeout: float = 60.0  # silence on the subscription (heartbeats every 15 s): re-subscribe
    agent_timeout: float = 5.0  # agent HTTP calls: statistics, sandbox files
    max_concurrent_updates: int = 256  # status updates in the sink at once (in order per task)

    @property
    def master_address(self) -> str:
        """host:port, as pymesos wants it (Mesos' port when none is given)."""
        address = self.master.strip().rstrip("/")
        for scheme in ("http://", "https://"):
            if address.startswith(scheme):
                address = address[len(scheme) :]
        address = address.split("/", 1)[0]
        host, port = parse_host_port(address, defaults.MESOS_MASTER_PORT, field="mesos_master")
        return format_host_port(host, port)

    @property
    def framework_name(self) -> str:
        return f"bay-{self.cluster}"
