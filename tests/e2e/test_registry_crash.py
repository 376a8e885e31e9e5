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
import time
import uuid
from dataclasses import dataclass, field

import httpx

from libs.clients import ServiceClient
from tests.e2e.harness import BayUp, pid_gone

GROUP = "e2e-crash"
FAIL_FAST_SECONDS = 3.0


@dataclass
class Traffic:
    acked: list[tuple[str, int, int]] = field(default_factory=list)  # key, instances, sequence
    failures: list[tuple[int, float, str]] = field(default_factory=list)  # status, seconds, message
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False


async def send_scales(http: httpx.AsyncClient, traffic: Traffic) -> None:
    n = 0
    while not traffic.stop:
        n += 1
        key = f"e2e-crash-{uuid.uuid4()}"
        while True:  # each round is a real request: the retry paces itself on the answers
            began = time.monotonic()
            resp = await http.post(
                f"/v1/groups/{GROUP}/scale", json={"instances": n}, headers={"Idempotency-Key": key}
            )
            took = time.monotonic() - began
            if resp.status_code == 200:
                traffic.acked.append((key, n, resp.json()["sequence"]))
                traffic.progress.set()
                break
            traffic.failures.append((resp.status_code, took, resp.json().get("message", "")))


async def wait_acks(traffic: Traffic, count: int, timeout: float = 20.0) -> None:
    async def enough() -> None:
        while len(traffic.acked) < count:
            traffic.progress.clear()
            await traffic.progress.wait()

    await asyncio.wait_for(enough(), timeout)


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
        traffic = Traffic()
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

    scaled = [e for e in history if e["type"] == "GroupScaled"]
    by_key = {e["idempotency_key"]: e for e in scaled}
    assert len(by_key) == len(scaled), "a command was applied twice"
    for key, instances, sequence in traffic.acked:
        assert key in by_key, f"acknowledged command {instances} is missing from the history"
        assert by_key[key]["data"]["instances"] == instances
        assert by_key[key]["sequence"] == sequence
    assert [e["data"]["instances"] for e in scaled] == [n for _, n, _ in traffic.acked]
    assert group["spec"]["instances"] == traffic.acked[-1][1]
