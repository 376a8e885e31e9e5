"""A client of Bay as it should be written, as load for the crash tests: one scale command at a
time, each with its own idempotency key, sent again with that key until it is acknowledged; what
was acknowledged and every failed attempt are recorded, to be checked against the group's history."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Traffic:
    group: str
    size: Callable[[int], int] = lambda n: n  # the n-th command's instances
    acked: list[tuple[str, int, int]] = field(default_factory=list)  # key, instances, sequence
    failures: list[tuple[int, float, str]] = field(default_factory=list)  # status (0: none), seconds, text
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False


async def send_scales(http: httpx.AsyncClient, traffic: Traffic) -> None:
    n = 0
    while not traffic.stop:
        n += 1
        key = f"{traffic.group}-{uuid.uuid4()}"
        instances = traffic.size(n)
        while True:  # each round is a real request: the retry paces itself on the answers
            began = time.monotonic()
            try:
                resp = await http.post(
                    f"/v1/groups/{traffic.group}/scale",
                    json={"instances": instances},
                    headers={"Idempotency-Key": key},
                )
            except httpx.TimeoutException as exc:
                traffic.failures.append((0, time.monotonic() - began, f"no answer: {exc}"))
                continue
            if resp.status_code == 200:
                traffic.acked.append((key, instances, resp.json()["sequence"]))
                traffic.progress.set()
                break
            traffic.failures.append(
                (resp.status_code, time.monotonic() - began, resp.json().get("message", ""))
            )


async def wait_acks(traffic: Traffic, count: int, timeout: float = 20.0) -> None:
    """Until ``count`` commands in all have been acknowledged."""

    async def enough() -> None:
        while len(traffic.acked) < count:
            traffic.progress.clear()
            await traffic.progress.wait()

    await asyncio.wait_for(enough(), timeout)


def check_history(traffic: Traffic, history: list[dict[str, Any]]) -> None:
    """Every acknowledged command is in the group's history once, at the sequence it was
    acknowledged with, in order; nothing else scaled the group."""
    scaled = [e for e in history if e["type"] == "GroupScaled"]
    by_key = {e["idempotency_key"]: e for e in scaled}
    assert len(by_key) == len(scaled), "a command was applied twice"
    for key, instances, sequence in traffic.acked:
        assert key in by_key, f"acknowledged command (instances {instances}) is missing from the history"
        assert by_key[key]["data"].get("instances", 0) == instances  # 0 is left out of the JSON
        assert by_key[key]["sequence"] == sequence
    assert [e["idempotency_key"] for e in scaled] == [k for k, _, _ in traffic.acked]
