"""Stopping ``bay up``: SIGTERM stops everything it started; even a SIGKILLed supervisor leaves
nothing running for long (services die with it; the next ``bay up`` stops the old nats-server)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.e2e.harness import group_gone, pid_gone, running_bay, start_bay, wait_gone


async def test_sigterm_stops_everything(tmp_path: Path) -> None:
    async with running_bay(tmp_path) as bay:
        pids = bay.pids()
        every = {"nats", "registry", "scheduler", "dns", "deployer", "autoscaler", "gateway", "audit"}
        assert set(pids) == every
        assert all(not pid_gone(pid) for pid in pids.values())
        code = await bay.terminate(timeout=15)
        assert code == 0
        assert bay.lines[-1] == "bay: stopped"
        for name, pid in pids.items():
            assert pid_gone(pid), f"{name} (pid {pid}) is still running"
            assert group_gone(pid), f"something {name} started (group {pid}) is still running"


async def test_a_killed_supervisor_leaves_nothing_behind(tmp_path: Path) -> None:
    first = await start_bay(tmp_path)
    try:
        pids = first.pids()
        first.proc.kill()
        await asyncio.wait_for(first.proc.wait(), 10)
        # the services die with their supervisor
        for name in ("registry", "dns", "deployer", "autoscaler", "gateway", "audit"):
            await wait_gone(pids[name], 15)
        assert not pid_gone(pids["nats"]), "nats-server cannot know: the next bay up must stop it"
    except BaseException:
        await first.kill_leftovers()
        raise
    async with running_bay(tmp_path) as second:
        await second.wait_for(
            rf"^bay: stopped the nats-server an earlier `bay up` left running \(pid {pids['nats']}\)$"
        )
        await wait_gone(pids["nats"], 5)
        assert await second.terminate(sig=signal.SIGINT) == 0  # Ctrl-C
