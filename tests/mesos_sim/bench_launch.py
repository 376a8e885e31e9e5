"""How long 5,000 tasks on 250 simulated agents take to be RUNNING through the Mesos backend.

``python -m tests.mesos_sim.bench_launch [--tasks N] [--agents N] [--uvloop] [--sim-process]``. Not a
test: it prints figures. By default the simulator runs on the same loop as the backend (as in the
scheduler's tests), so the figure includes the master's own work and its share of the one GIL;
``--sim-process`` runs it as a process of its own (``serve.py``), as a real master is. Either way
every update, acknowledgement and accept crosses real HTTP.
Timed from the ``launch()`` call to the last RUNNING taken by the sink; STARTING must be acknowledged
before the simulated agent sends RUNNING, as a real agent's status update manager does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator

from services.scheduler.backends.mesos import MesosBackend, MesosBackendConfig
from services.scheduler.ports import Host, LaunchSpec, TaskState, TaskStatus
from tests.mesos_sim import MesosMasterSim, SimConfig
from tests.poll import poll_until


def specs_for(hosts: list[Host], tasks: int) -> list[LaunchSpec]:
    out: list[LaunchSpec] = []
    for i in range(tasks):
        host = hosts[i % len(hosts)]
        port = host.ports[0].begin + i // len(hosts)
        out.append(
            LaunchSpec(
                task_id=f"bench.{i:05d}",
                group="bench",
                group_version=1,
                host_id=host.host_id,
                offer_id=host.offer_id,
                cmd="sleep 3600",
                image=None,
                args=(),
                env={},
                cpus=0.1,
                mem=32.0,
                disk=0.0,
                ports={"http": port},
            )
        )
    return out


@contextlib.asynccontextmanager
async def master(agents: int, own_process: bool) -> AsyncIterator[tuple[str, MesosMasterSim | None]]:
    if not own_process:
        sim = MesosMasterSim(agents=agents, config=SimConfig())
        await sim.start()
        try:
            yield sim.address, sim
        finally:
            await sim.stop()
        return
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is measured)
        [sys.executable, "-m", "tests.mesos_sim.serve", "--agents", str(agents)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = (await asyncio.to_thread(proc.stdout.readline)).strip()
        yield address, None
    finally:
        proc.terminate()
        proc.wait(10)


async def run(tasks: int, agents: int, own_process: bool = False) -> dict[str, float | str]:
    async with master(agents, own_process) as (address, sim):
        return await measure(address, sim, tasks, agents)


async def measure(
    address: str, sim: MesosMasterSim | None, tasks: int, agents: int
) -> dict[str, float | str]:
    running: set[str] = set()
    states: dict[TaskState, int] = {}
    done = asyncio.Event()

    async def sink(status: TaskStatus) -> None:
        states[status.state] = states.get(status.state, 0) + 1
        if status.state is TaskState.RUNNING:
            running.add(status.task_id)
            if len(running) == tasks:
                done.set()

    offered = asyncio.Event()
    backend: MesosBackend | None = None

    def on_capacity() -> None:
        offered.set()

    backend = MesosBackend(MesosBackendConfig(master=address, cluster="bench"), on_capacity=on_capacity)
    try:
        await backend.start(sink)
        while len(hosts := await backend.capacity()) < agents:
            offered.clear()
            await asyncio.wait_for(offered.wait(), 10)
        specs = specs_for(sorted(hosts, key=lambda h: h.hostname), tasks)
        began = time.perf_counter()
        await backend.launch(specs)
        launched = time.perf_counter()
        await asyncio.wait_for(done.wait(), 120)
        finished = time.perf_counter()
        await poll_until(
            lambda: backend.acknowledged >= sum(states.values()), "every update acknowledged", 60
        )
        acked = time.perf_counter()
        return {
            "master": "same loop" if sim else "own process",
            "tasks": tasks,
            "agents": agents,
            "launch() returned after s": round(launched - began, 3),
            "all RUNNING after s": round(finished - began, 3),
            "all acknowledged after s": round(acked - began, 3),
            "RUNNING per s": round(tasks / (finished - began)),
            "acknowledgements": backend.acknowledged,
            "updates in sink": sum(states.values()),
        }
    finally:
        await backend.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.mesos_sim.bench_launch", description=__doc__)
    p.add_argument("--tasks", type=int, default=5_000)
    p.add_argument("--agents", type=int, default=250)
    p.add_argument("--uvloop", action="store_true", help="run on uvloop, as the services do")
    p.add_argument("--sim-process", action="store_true", help="the master in a process of its own")
    args = p.parse_args()
    job = run(args.tasks, args.agents, args.sim_process)
    if args.uvloop:
        import uvloop

        result = uvloop.run(job)
    else:
        result = asyncio.run(job)
    for key, value in result.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
