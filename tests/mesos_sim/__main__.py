"""``python -m tests.mesos_sim --port P --agents N [--run-commands]``: the simulated master as a process
of its own (what ``bay up --sim-cluster`` runs)."""

from tests.mesos_sim.serve import main

main()
