"""Where Bay's services listen and are reached when nothing says otherwise: the one home of each
default address, so the service's own settings, its callers' settings and ``bay up`` cannot drift.

The services' settings import these; changing one here changes it for the service and every caller.
"""

from __future__ import annotations

from typing import Final

NATS_PORT: Final = 4250  # not 4222: a machine's own NATS is left alone
NATS_URL: Final = f"nats://127.0.0.1:{NATS_PORT}"

REGISTRY_ADDRESS: Final = "127.0.0.1:50051"
#: the scheduler of the cluster ``local``
SCHEDULER_ADDRESS: Final = "127.0.0.1:50061"
#: the scheduler of ``bay up --sim-cluster``'s simulated Mesos cluster
SIM_SCHEDULER_ADDRESS: Final = "127.0.0.1:50062"
#: Mesos' own default master port (the simulator's too)
MESOS_MASTER_PORT: Final = 5050
DEPLOYER_ADDRESS: Final = "127.0.0.1:50053"
AUTOSCALER_ADDRESS: Final = "127.0.0.1:50054"
DNS_ADDRESS: Final = "127.0.0.1:1053"  # UDP+TCP; 53 needs privilege
DNS_GRPC_ADDRESS: Final = "127.0.0.1:50071"
GATEWAY_ADDRESS: Final = "127.0.0.1:8080"
GATEWAY_URL: Final = f"http://{GATEWAY_ADDRESS}"

#: each process's Prometheus ``/metrics`` listener (``BAY_METRICS_LISTEN``; the gateway serves its own
#: ``/metrics`` on its HTTP port instead)
REGISTRY_METRICS_ADDRESS: Final = "127.0.0.1:9310"
SCHEDULER_METRICS_ADDRESS: Final = "127.0.0.1:9311"  # the scheduler of the cluster ``local``
SIM_SCHEDULER_METRICS_ADDRESS: Final = "127.0.0.1:9312"
DEPLOYER_METRICS_ADDRESS: Final = "127.0.0.1:9313"
AUTOSCALER_METRICS_ADDRESS: Final = "127.0.0.1:9314"
DNS_METRICS_ADDRESS: Final = "127.0.0.1:9315"

#: the most past lines a task's log is read with (``tail``), in the API, the CLI and the scheduler
MAX_LOG_TAIL: Final = 100_000

#: ``bay up --monitoring``: Prometheus and Alertmanager on their own usual ports
PROMETHEUS_ADDRESS: Final = "127.0.0.1:9090"
ALERTMANAGER_ADDRESS: Final = "127.0.0.1:9093"
