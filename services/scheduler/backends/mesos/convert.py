"""Mesos JSON (v1 scheduler API, snake_case) to the scheduler's port types: offers and task statuses.

Pure functions, no I/O: the backend feeds them what pymesos hands over.
"""

from __future__ import annotations

import re
from typing import Any

from services.scheduler.ports import Host, PortRange, TaskState, TaskStatus, TaskUsage

Json = dict[str, Any]

_EXIT_STATUS = re.compile(r"exited with status (\d+)")


def scalar_text(value: float) -> str:
    """A SCALAR attribute as text the way Mesos prints it (2.0 -> "2", 2.5 -> "2.5")."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def attribute_text(attr: Json) -> str | None:
    """An agent attribute as the host label constraints match on; None for a malformed one."""
    kind = attr.get("type")
    if kind == "TEXT":
        return str((attr.get("text") or {}).get("value", ""))
    if kind == "SCALAR":
        return scalar_text(float((attr.get("scalar") or {}).get("value", 0.0)))
    if kind == "RANGES":
        rngs = (attr.get("ranges") or {}).get("range", [])
        return "[" + ", ".join(f"{r['begin']}-{r['end']}" for r in rngs) + "]"
    if kind == "SET":
        return "{" + ",".join((attr.get("set") or {}).get("item", [])) + "}"
    return None


def merge_ranges(ranges: list[tuple[int, int]]) -> tuple[PortRange, ...]:
    out: list[list[int]] = []
    for begin, end in sorted(ranges):
        if out and begin <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return tuple(PortRange(b, e) for b, e in out)


def offer_to_host(offer: Json) -> Host:
    """An offer as free capacity on its agent: scalars summed over roles, ports merged into ranges."""
    scalars = {"cpus": 0.0, "mem": 0.0, "disk": 0.0}
    ports: list[tuple[int, int]] = []
    for res in offer.get("resources", []):
        name = res.get("name")
        if name in scalars and res.get("type", "SCALAR") == "SCALAR":
            scalars[name] += float((res.get("scalar") or {}).get("value", 0.0))
        elif name == "ports" and res.get("type") == "RANGES":
            ports += [(int(r["begin"]), int(r["end"])) for r in (res.get("ranges") or {}).get("range", [])]
    labels: dict[str, str] = {}
    for attr in offer.get("attributes", []):
        text = attribute_text(attr)
        if text is not None and "name" in attr:
            labels[attr["name"]] = text
    return Host(
        host_id=offer["agent_id"]["value"],
        hostname=offer.get("hostname", ""),
        labels=labels,
        cpus=scalars["cpus"],
        mem=scalars["mem"],
        disk=scalars["disk"],
        ports=merge_ranges(ports),
        offer_id=offer["id"]["value"],
    )


def agent_address(offer: Json) -> str | None:
    """ip:port of the agent's own HTTP endpoint (``/monitor/statistics``, ``/files/read``), from the
    offer's url."""
    address = (offer.get("url") or {}).get("address") or {}
    host = address.get("ip") or address.get("hostname")
    port = address.get("port")
    return f"{host}:{port}" if host and port else None


def task_state(mesos_state: str) -> TaskState:
    name = mesos_state.removeprefix("TASK_")
    try:
        return TaskState(name)
    except ValueError:
        return TaskState.UNKNOWN


def exit_code_of(state: TaskState, message: str) -> int | None:
    """Mesos' executors say "Command exited with status 3" (docker: "Container exited ..."); FINISHED is 0."""
    found = _EXIT_STATUS.search(message)
    if found:
        return int(found.group(1))
    return 0 if state is TaskState.FINISHED else None


def to_task_status(status: Json, hostname: str, now: float) -> TaskStatus:
    """A Mesos TaskStatus as the port's; ``hostname`` is the agent's, which the status does not carry."""
    state = task_state(str(status.get("state", "TASK_UNKNOWN")))
    message = str(status.get("message", ""))
    healthy = status.get("healthy")
    return TaskStatus(
        task_id=status["task_id"]["value"],
        state=state,
        host_id=(status.get("agent_id") or {}).get("value", ""),
        hostname=hostname,
        timestamp=float(status.get("timestamp") or now),
        message=message,
        reason=str(status.get("reason", "")),
        healthy=healthy if isinstance(healthy, bool) else None,
        exit_code=exit_code_of(state, message),
    )


def task_usage(task_id: str, entry: Json, now: float) -> TaskUsage:
    """One executor's entry of an agent's ``/monitor/statistics`` (a command task's executor)."""
    stats = entry.get("statistics") or {}
    return TaskUsage(
        task_id=task_id,
        timestamp=float(stats.get("timestamp") or now),
        cpu_seconds=float(stats.get("cpus_user_time_secs", 0.0))
        + float(stats.get("cpus_system_time_secs", 0.0)),
        mem_bytes=int(stats.get("mem_rss_bytes", 0)),
        cpus_limit=float(stats.get("cpus_limit", 0.0)),
        mem_limit_bytes=int(stats.get("mem_limit_bytes", 0)),
    )
