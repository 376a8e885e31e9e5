"""Ports that sockets of other processes on this machine hold, read from ``/proc/net``.

A task given such a port dies with EADDRINUSE, and its group goes into backoff; so the local backend
offers and hands out only ports no socket holds. TCP counts when listening (a task's server binds with
SO_REUSEADDR, which a connection in another state does not stop); UDP counts whenever bound. IPv4 and
IPv6 both: a listener on ``[::]`` takes the IPv4 port too. Reading the tables is one pass over this
network namespace's sockets (what the tasks see too), a few hundred lines on a busy host.
"""

from __future__ import annotations

from pathlib import Path

_TCP_LISTEN = "0A"
_TABLES = (("tcp", True), ("tcp6", True), ("udp", False), ("udp6", False))


def held_ports(begin: int, end: int, proc_net: Path = Path("/proc/net")) -> set[int]:
    """Local ports in ``begin..end`` that some socket holds (listening TCP, bound UDP)."""
    held: set[int] = set()
    for table, tcp in _TABLES:
        try:
            lines = (proc_net / table).read_text().splitlines()[1:]
        except OSError:
            continue  # no IPv6 here, or no /proc: nothing known held
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or (tcp and fields[3] != _TCP_LISTEN):
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if begin <= port <= end:
                held.add(port)
    return held
