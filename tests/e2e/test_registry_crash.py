"""SIGKILL the registry while scale commands flow: no acknowledged command may be lost.

The client does what a client of Bay should: one command at a time, each with its own idempotency
key, and a command that fails (503) is sent again with the same key until it is acknowledged.
Afterwards the group's history holds every command exactly once, in order, and the group's state
is what the last command says; every failure was a fast 503.
"""

from __future__ import annotations

import asyncio
import os
import signal

from libs.clients import ServiceClient
from tests.e2e.harness import BayUp, pid_gone
from tests.e2e.traffic import Traffic, check_history, send_scales, wait_acks

GROUP = "e2e-crash"
FAIL_FAST_SECONDS = 3.0


async def registry_serving(address: str, timeout: float = 20.0) -> None:
    async with ServiceClient(address, timeout=5.0) as registry:
        await asyncio.wait_for(registry.until_serving(), timeout)


async def test_killed_registry_loses_no_acknowledged_command(bay: BayUp) -> None:
    try:
        await _killed_registry_loses_no_acknowledged_command(bay)
    finally:  # the stack is shared: its scale-up (to a hundred or so) must not hold the machine's cpus
        await bay.cli("scale", GROUP, "0", "--wait", "--timeout", "60", timeout=70)
        await bay.cli("delete", GROUP)


async def _killed_registry_loses_no_acknowledged_command(bay: BayUp) -> None:
    async with bay.http() as http:
        created = await http.post("/v1/groups", json={"name": GROUP, "cmd": "sleep 600", "instances": 0})
        assert created.status_code == 201, created.text
        traffic = Traffic(GROUP)
        sender = asyncio.create_task(send_scales(http, traffic))
        try:
            await wait_acks(traffic, 3)
            victim = bay.pids()["registry"]
            mark = len(bay.lines)
            os.kill(victim, signal.SIGKILL)
            await bay.wait_for(r"^bay: registry exited \(signal 9\); restarting in \d+\.\ds$", start=mark)
            restarted = int(
                (await bay.wait_for(r"^bay: registry restarted \(pid (\d+)\)$", start=mark)).group(1)
            )
            assert restarted != victim and pid_gone(victim)
            await registry_serving(bay.env["BAY_REGISTRY_LISTEN"])
            await wait_acks(traffic, len(traffic.acked) + 3)
        finally:
            traffic.stop = True
            await asyncio.wait_for(sender, 20)

        assert traffic.failures, "no command met the outage: the test did not test anything"
        for status, took, message in traffic.failures:
            assert status == 503, (status, message)
            assert took < FAIL_FAST_SECONDS, f"a failure took {took:.1f}s"
            assert message

        history = (await http.get(f"/v1/groups/{GROUP}/history")).json()["events"]
        group = (await http.get(f"/v1/groups/{GROUP}")).json()
        # the stack is shared by the package: its tasks must not hold the machine's cpus for the next
        deleted = await http.delete(f"/v1/groups/{GROUP}")
        assert deleted.status_code == 200, deleted.text

    check_history(traffic, history)
    assert group["spec"]["instances"] == traffic.acked[-1][1]
