"""A Mesos master simulator (v1 scheduler HTTP API) for tests and benchmarks; see ``master.py``."""

from tests.mesos_sim.master import MesosMasterSim, SimConfig, make_agents
from tests.mesos_sim.model import AgentSpec

__all__ = ["AgentSpec", "MesosMasterSim", "SimConfig", "make_agents"]
