"""The embedded stack behind ``bay up``: a supervisor for nats-server and every service process."""

from services.cli.stack.settings import StackSettings
from services.cli.stack.supervisor import Supervisor, run_stack
from services.cli.stack.table import SERVICES, ServiceProcess

__all__ = ["SERVICES", "ServiceProcess", "StackSettings", "Supervisor", "run_stack"]
