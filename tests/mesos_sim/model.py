"""The simulated master's state: agents, offers, tasks and frameworks, plus Mesos resource JSON helpers.

Kept free of I/O so that the master (``master.py``) stays a thin layer of calls, events and timers.
"""

from __future__ import annotations

import base64
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

TERMINAL = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE",
     "TASK_GONE_BY_OPERATOR"}
)  # fmt: skip


@dataclass(frozen=True)
class AgentSpec:
    """What a simulated agent has to offer; attributes are TEXT (str) or SCALAR (float) host labels."""

    hostname: str
    cpus: float = 8.0
    mem: float = 16384.0
    disk: float = 65536.0
    ports: tuple[tuple[int, int], ...] = ((31000, 32000),)
    attributes: dict[str, str | float] = field(default_factory=dict)


@dataclass
class Usage:
    """Scalar resources plus a set of ports: what an offer holds or a task uses."""

    cpus: float = 0.0
    mem: float = 0.0
    disk: float = 0.0
    ports: set[int] = field(default_factory=set)

    def fits_in(self, other: Usage) -> bool:
        eps = 1e-9
        return (
            self.cpus <= other.cpus + eps
            and self.mem <= other.mem + eps
            and self.disk <= other.disk + eps
            and self.ports <= other.ports
        )

    def take(self, used: Usage) -> None:
        self.cpus -= used.cpus
        self.mem -= used.mem
        self.disk -= used.disk
        self.ports -= used.ports

    def give(self, used: Usage) -> None:
        self.cpus += used.cpus
        self.mem += used.mem
        self.disk += used.disk
        self.ports |= used.ports

    def copy(self) -> Usage:
        return Usage(self.cpus, self.mem, self.disk, set(self.ports))


def ranges_of(ports: set[int]) -> list[Json]:
    """Ports as Mesos ranges (inclusive begin/end), sorted."""
    out: list[Json] = []
    for p in sorted(ports):
        if out and out[-1]["end"] == p - 1:
            out[-1]["end"] = p
        else:
            out.append({"begin": p, "end": p})
    return out


def resources_json(u: Usage) -> list[Json]:
    res: list[Json] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": round(u.cpus, 6)}, "role": "*"},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": round(u.mem, 6)}, "role": "*"},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": round(u.disk, 6)}, "role": "*"},
    ]
    if u.ports:
        res.append({"name": "ports", "type": "RANGES", "ranges": {"range": ranges_of(u.ports)}, "role": "*"})
    return res


def parse_resources(resources: list[Json]) -> Usage:
    """A TaskInfo's resources as a Usage; raises ValueError on a malformed entry."""
    u = Usage()
    for r in resources:
        name = r.get("name")
        if name in ("cpus", "mem", "disk"):
            value = float(r["scalar"]["value"])
            if value < 0:
                raise ValueError(f"negative {name}")
            setattr(u, name, getattr(u, name) + value)
        elif name == "ports":
            for rng in r.get("ranges", {}).get("range", []):
                begin, end = int(rng["begin"]), int(rng["end"])
                if end < begin:
                    raise ValueError("bad port range")
                u.ports.update(range(begin, end + 1))
    return u


def attributes_json(attrs: dict[str, str | float]) -> list[Json]:
    out: list[Json] = []
    for name, value in attrs.items():
        if isinstance(value, str):
            out.append({"name": name, "type": "TEXT", "text": {"value": value}})
        else:
            out.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
    return out


def new_uuid_b64() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode("ascii")


@dataclass
class Agent:
    agent_id: str
    spec: AgentSpec
    free: Usage
    offer_id: str | None = None  # the outstanding offer holding all of ``free``, if any
    lost: bool = False
    tasks: set[tuple[str, str]] = field(default_factory=set)  # (framework_id, task_id)


@dataclass
class Offer:
    offer_id: str
    framework_id: str
    agent_id: str
    resources: Usage


@dataclass
class Task:
    task_id: str
    framework_id: str
    agent_id: str
    name: str
    used: Usage
    info: Json
    state: str = "TASK_STAGING"
    launched_at: float = 0.0
    running_at: float | None = None
    healthy: bool | None = None
    timers: list[Any] = field(default_factory=list)  # asyncio.TimerHandle, cancelled when terminal
    last_status: Json | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass
class Framework:
    framework_id: str
    info: Json
    failover_timeout: float
    partition_aware: bool
    stream_id: str | None = None  # the live subscription's id; None when disconnected
    suppressed: bool = False
    refused_until: dict[str, float] = field(default_factory=dict)  # agent id -> time of re-offer
    tasks: dict[str, Task] = field(default_factory=dict)
    # Per task, the updates with a uuid waiting for acknowledgement; only the head is (re-)sent.
    pending: dict[str, deque[Json]] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)  # task id -> when its head was last sent
    failover_handle: Any = None  # asyncio.TimerHandle while the failover timeout runs
