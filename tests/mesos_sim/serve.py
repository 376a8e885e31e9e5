"""Run the master simulator as a process of its own, as a real master would be: for benchmarks.

``python -m tests.mesos_sim[.serve] [--agents N] [--port P] [--run-commands]`` prints ``<host:port>`` on its
first line once it listens, then serves until stdin closes or it gets SIGTERM/SIGINT. ``--run-commands``:
the agents run tasks' commands as real processes (each agent with a port range of its own), which
stopping ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import stat
import sys

from tests.mesos_sim import MesosMasterSim, SimConfig
from tests.mesos_sim.master import make_agents


async def serve(
    agents: int, port: int = 0, cpus: float = 8.0, mem: float = 16384.0, run_commands: bool = False
) -> None:
    specs = make_agents(agents, cpus=cpus, mem=mem, own_ports=run_commands)
    sim = MesosMasterSim(agents=specs, config=SimConfig(run_commands=run_commands))
    await sim.start(port)
    print(sim.address, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def stdin_readable() -> None:
        if not sys.stdin.read(1):  # closed: the parent is gone
            stop.set()

    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):  # a parent holds our stdin: watch it
        loop.add_reader(sys.stdin.fileno(), stdin_readable)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.mesos_sim.serve", description=__doc__)
    p.add_argument("--agents", type=int, default=250)
    p.add_argument("--port", type=int, default=0, help="the leading master's port (0: a free one)")
    p.add_argument("--cpus", type=float, default=8.0, help="cpus of each agent")
    p.add_argument("--mem", type=float, default=16384.0, help="MiB of each agent")
    p.add_argument(
        "--run-commands", action="store_true", help="agents run the tasks' commands as real processes"
    )
    args = p.parse_args()
    asyncio.run(serve(args.agents, args.port, args.cpus, args.mem, args.run_commands))


if __name__ == "__main__":
    main()
