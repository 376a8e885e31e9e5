"""Marathon's port variables, the same on every backend and for command health checks."""

from __future__ import annotations

from collections.abc import Mapping


def port_env(ports: Mapping[str, int]) -> dict[str, str]:
    """``PORT0``.. in declaration order, ``PORT_<NAME>`` per named port, ``PORT`` (the first) and
    ``PORTS`` (all, comma separated)."""
    env: dict[str, str] = {}
    for index, (name, port) in enumerate(ports.items()):
        env[f"PORT{index}"] = str(port)
        if name:
            env[f"PORT_{name.upper().replace('-', '_')}"] = str(port)
    if ports:
        env["PORT"] = str(next(iter(ports.values())))
        env["PORTS"] = ",".join(str(p) for p in ports.values())
    return env
