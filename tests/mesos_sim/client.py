"""Test-side helpers: a pymesos scheduler bridged into asyncio, a RecordIO reader, TaskInfo builders."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler

Json = dict[str, Any]


class Bridge(Scheduler):  # type: ignore[misc]
    """pymesos callbacks (its IO thread) -> one asyncio.Queue per callback kind on the test's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)

    def _put(self, kind: str, payload: Any) -> None:
        self.loop.call_soon_threadsafe(self.queues[kind].put_nowait, payload)

    def registered(self, driver: Any, framework_id: Json, master_info: Json) -> None:
        self._put("registered", framework_id)

    def reregistered(self, driver: Any, master_info: Json) -> None:
        self._put("reregistered", master_info)

    def disconnected(self, driver: Any) -> None:
        self._put("disconnected", None)

    def resourceOffers(self, driver: Any, offers: list[Json]) -> None:
        self._put("offers", offers)

    def offerRescinded(self, driver: Any, offer_id: Json) -> None:
        self._put("rescinded", offer_id)

    def statusUpdate(self, driver: Any, status: Json) -> None:
        self._put("update", status)

    def slaveLost(self, driver: Any, agent_id: Json) -> None:
        self._put("agent_lost", agent_id)

    def error(self, driver: Any, message: str) -> None:
        self._put("error", message)

    async def next(
        self, kind: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 5.0
    ) -> Any:
        """The next ``kind`` payload satisfying ``where`` (others of that kind are dropped)."""

        async def find() -> Any:
            while True:
                item = await self.queues[kind].get()
                if where(item):
                    return item

        return await asyncio.wait_for(find(), timeout)


async def start_driver(address: str, framework: Json | None = None) -> tuple[MesosSchedulerDriver, Bridge]:
    """Start a pymesos driver off the loop (its start() does blocking HTTP to the simulator)."""
    bridge = Bridge(asyncio.get_running_loop())
    info = framework or {"user": "bay", "name": "bay-test", "hostname": "127.0.0.1"}
    driver = MesosSchedulerDriver(bridge, dict(info), address)
    await asyncio.to_thread(driver.start)
    return driver, bridge


async def stop_driver(driver: MesosSchedulerDriver, failover: bool = False) -> None:
    # off the loop: stop() takes the driver's lock, which its IO thread may hold while it waits for
    # the simulator (on this loop) to answer an acknowledgement
    await asyncio.to_thread(driver.stop, failover)
    await asyncio.wait_for(asyncio.to_thread(driver.join), 15)


def scalar(offer: Json, name: str) -> float:
    return float(next(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name))


def task_info(
    task_id: str, agent_id: str, *, cpus: float = 0.1, mem: float = 32.0, ports: list[int] | None = None,
    health: bool = False,
) -> Json:  # fmt: skip
    resources: list[Json] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
    ]
    if ports:
        rng = [{"begin": p, "end": p} for p in ports]
        resources.append({"name": "ports", "type": "RANGES", "ranges": {"range": rng}})
    info: Json = {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": resources,
        "command": {"shell": True, "value": "sleep 1000"},
    }
    if health:
        info["health_check"] = {"type": "HTTP", "http": {"port": (ports or [80])[0], "path": "/"}}
    return info


async def records(chunks: AsyncIterator[bytes]) -> AsyncIterator[Json]:
    """Events from a RecordIO body (``<length>\\n<json>`` repeated), checking the framing as it goes."""
    buf = b""
    async for chunk in chunks:
        buf += chunk
        while b"\n" in buf:
            length_text, rest = buf.split(b"\n", 1)
            assert length_text.isdigit(), f"bad RecordIO length {length_text!r}"
            length = int(length_text)
            if len(rest) < length:
                break
            yield json.loads(rest[:length])
            buf = rest[length:]
