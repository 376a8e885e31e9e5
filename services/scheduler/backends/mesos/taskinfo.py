"""LaunchSpec -> Mesos TaskInfo JSON: resources carved out of the offer, command or Docker container,
Marathon's port variables, health check and labels. Pure, no I/O.

Resources are taken from the offer's own entries so that each task resource keeps the role or
reservation it was offered with (a task may only use what the offer holds, as offered). When the
offer cannot cover a task, the rest is asked for anyway: the master then answers TASK_LOST
(REASON_INVALID_OFFERS), which is what the scheduler core expects from a launch that does not fit.

Artifacts (``LaunchSpec.fetch``) become ``CommandInfo.uris`` (never cached: a build is fetched as
it is). Mesos' fetcher downloads and unpacks them into the sandbox but checks no digest, so the
command checks each fetched file before anything else runs: a shell prefix per artifact compares
``sha256sum`` of the file with the build's digest and, on a mismatch, prints ``bay fetch: sha256
mismatch for URI: expected X, got Y`` to stderr and exits 86, as the local backend's fetcher does.
(A prefix rather than a launcher: it needs nothing on the agent but coreutils, works for any
command task, and the message reaches Bay the way every failed command's does: the last stderr
line the backend appends to TASK_FAILED.) The archive is checked, so what it unpacked may be on
disk already when the task fails: it never runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from services.scheduler.backends.local.fetch import FETCH_EXIT, PREFIX, file_name
from services.scheduler.portenv import port_env
from services.scheduler.ports import Artifact, HealthCheckSpec, LaunchSpec

from .convert import merge_ranges

Json = dict[str, Any]

# What a resource entry says besides its amount: kept on the task's share of it.
_QUALIFIERS = ("role", "reservation", "reservations", "allocation_info", "disk", "revocable", "provider_id")


def _qualifiers(res: Json) -> Json:
    return {k: res[k] for k in _QUALIFIERS if k in res}


class OfferPool:
    """What is left of one offer while its tasks are built: scalar amounts and port ranges per entry."""

    def __init__(self, resources: list[Json]) -> None:
        self._scalars: dict[str, list[tuple[Json, list[float]]]] = {}
        self._ports: list[tuple[Json, list[tuple[int, int]]]] = []
        for res in resources:
            name = res.get("name", "")
            if res.get("type", "SCALAR") == "SCALAR" and "scalar" in res:
                amount = float(res["scalar"].get("value", 0.0))
                self._scalars.setdefault(name, []).append((_qualifiers(res), [amount]))
            elif name == "ports" and res.get("type") == "RANGES":
                rngs = [(int(r["begin"]), int(r["end"])) for r in (res.get("ranges") or {}).get("range", [])]
                self._ports.append((_qualifiers(res), rngs))

    def take_scalar(self, name: str, amount: float) -> list[Json]:
        out: list[Json] = []
        left = amount
        entries = self._scalars.get(name, [])
        for quals, box in entries:
            if left <= 1e-9:
                break
            share = min(left, box[0])
            if share > 1e-9:
                box[0] -= share
                left -= share
                out.append(_scalar(name, share, quals))
        if left > 1e-9:  # more than offered: let the master refuse it
            out.append(_scalar(name, left, entries[-1][0] if entries else {}))
        return out

    def take_ports(self, ports: Iterable[int]) -> list[Json]:
        by_entry: dict[int, list[tuple[int, int]]] = {}
        for port in ports:
            index = next(
                (i for i, (_, rngs) in enumerate(self._ports) if any(b <= port <= e for b, e in rngs)), -1
            )
            by_entry.setdefault(index, []).append((port, port))
        out: list[Json] = []
        for index, single in sorted(by_entry.items()):
            quals = self._ports[index][0] if index >= 0 else (self._ports[0][0] if self._ports else {})
            ranges = [{"begin": r.begin, "end": r.end} for r in merge_ranges(single)]
            out.append({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}, **quals})
        return out


def _scalar(name: str, value: float, quals: Json) -> Json:
    return {"name": name, "type": "SCALAR", "scalar": {"value": round(value, 6)}, **quals}


def task_env(spec: LaunchSpec, hostname: str) -> dict[str, str]:
    """The group's env plus Marathon's port variables (PORT0.., PORT_<NAME>, PORT, PORTS) and HOST.

    The same variables as the local backend's ``spawn.task_env``, minus what only makes sense on the
    scheduler's own machine (its PATH, a local sandbox path): Mesos sets PATH and MESOS_SANDBOX itself.
    """
    env = dict(spec.env)
    env.update(port_env(spec.ports))
    env.update(HOST=hostname, BAY_TASK_ID=spec.task_id, BAY_GROUP=spec.group)
    return env


def _environment(env: Mapping[str, str]) -> Json:
    return {"variables": [{"name": k, "value": v} for k, v in env.items()]}


def _dq(text: str) -> str:
    """``text`` inside a double-quoted shell word."""
    for ch in ("\\", '"', "$", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def digest_check(artifact: Artifact) -> str:
    """A shell statement: the fetched file's sha256 is the artifact's, or the task ends (see above)."""
    name = shlex.quote(file_name(artifact.uri))
    said = _dq(f"{PREFIX}sha256 mismatch for {artifact.uri}: expected {artifact.sha256}, got ")
    return (
        f"got=$(sha256sum < {name} | cut -c1-64); "
        f'[ "$got" = {artifact.sha256} ] || {{ echo "{said}$got" >&2; exit {FETCH_EXIT}; }}; '
    )


def uri_info(artifact: Artifact) -> Json:
    return {
        "value": artifact.uri,
        "extract": artifact.extract,
        "executable": artifact.executable,
        "cache": False,
        "output_file": file_name(artifact.uri),  # where the check looks, whatever the URI's query
    }


def command_info(spec: LaunchSpec, env: Mapping[str, str]) -> Json:
    """``cmd`` runs under the shell with ``args`` as $1.. (as on the local backend); without ``cmd``,
    ``args`` are the argv (an image's entrypoint gets them as its arguments). Artifacts are
    fetched into the sandbox and their digests checked before ``cmd``."""
    command: Json = {"environment": _environment(env)}
    cmd = spec.cmd or (shlex.join(spec.args) if spec.fetch and not spec.image else None)
    if cmd:
        value = cmd
        if spec.args and spec.cmd:
            value = f"set -- {shlex.join(spec.args)}; {spec.cmd}"
        if spec.fetch:
            command["uris"] = [uri_info(a) for a in spec.fetch]
            value = "".join(digest_check(a) for a in spec.fetch) + value
        command.update(shell=True, value=value)
    elif spec.image:
        command.update(shell=False, arguments=list(spec.args))
    else:
        command.update(shell=False, value=spec.args[0] if spec.args else "", arguments=list(spec.args))
    return command


def container_info(spec: LaunchSpec, network: str) -> Json:
    """Docker with host ports mapped to the same container ports in BRIDGE mode: the task reads its
    port from $PORT0 (as on Marathon with ``containerPort: 0``), which is right on both sides."""
    docker: Json = {"image": spec.image, "network": network, "force_pull_image": False}
    if network == "BRIDGE" and spec.ports:
        docker["port_mappings"] = [
            {"host_port": port, "container_port": port, "protocol": "tcp"} for port in spec.ports.values()
        ]
    return {"type": "DOCKER", "docker": docker}


def health_check_info(check: HealthCheckSpec, ports: Mapping[str, int], env: Mapping[str, str]) -> Json:
    """Mesos' HealthCheck from the group's check; the agent runs it and reports ``healthy``."""
    out: Json = {
        "delay_seconds": 0.0,  # the grace period covers a slow start
        "interval_seconds": check.interval_seconds,
        "timeout_seconds": check.timeout_seconds,
        "consecutive_failures": check.max_consecutive_failures,
        "grace_period_seconds": check.grace_period_seconds,
    }
    protocol = check.protocol.lower()
    if protocol == "command":
        out.update(type="COMMAND", command={"shell": True, "value": check.command, **_env_of(env)})
        return out
    if check.port_name:
        if check.port_name not in ports:
            raise ValueError(f"health check port {check.port_name!r} is not one of the task's ports")
        port = ports[check.port_name]
    elif ports:
        port = next(iter(ports.values()))
    else:
        raise ValueError(f"a {protocol} health check needs a port and the task has none")
    if protocol == "http":
        out.update(type="HTTP", http={"scheme": "http", "port": port, "path": check.path or "/"})
    elif protocol == "tcp":
        out.update(type="TCP", tcp={"port": port})
    else:
        raise ValueError(f"unknown health check protocol {check.protocol!r}")
    return out


def _env_of(env: Mapping[str, str]) -> Json:
    return {"environment": _environment(env)}


def task_info(spec: LaunchSpec, hostname: str, pool: OfferPool, docker_network: str = "BRIDGE") -> Json:
    """One TaskInfo; raises ValueError when the spec cannot be expressed (the task is then an ERROR)."""
    if not spec.cmd and not spec.args and not spec.image:
        raise ValueError("the task has neither cmd, args nor image: nothing to run")
    env = task_env(spec, hostname)
    health = health_check_info(spec.health_check, spec.ports, env) if spec.health_check else None
    resources = pool.take_scalar("cpus", spec.cpus) + pool.take_scalar("mem", spec.mem)
    if spec.disk > 0:
        resources += pool.take_scalar("disk", spec.disk)
    if spec.ports:
        resources += pool.take_ports(spec.ports.values())
    labels = {**spec.labels, "bay_group": spec.group, "bay_group_version": str(spec.group_version)}
    info: Json = {
        "name": spec.group,
        "task_id": {"value": spec.task_id},
        "agent_id": {"value": spec.host_id},
        "resources": resources,
        "command": command_info(spec, env),
        "labels": {"labels": [{"key": k, "value": v} for k, v in labels.items()]},
    }
    if spec.image:
        info["container"] = container_info(spec, docker_network)
    if health is not None:
        info["health_check"] = health
    return info
