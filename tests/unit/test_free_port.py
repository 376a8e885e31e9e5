"""The tests' ports: never one the kernel may give an outgoing connection (a stack's scheduler once
found its port taken for good by another process's connection), never twice in one session."""

from __future__ import annotations

import socket

import pytest

from libs import natsserver
from libs.natsserver import FREE_PORTS, free_port


def _ephemeral() -> tuple[int, int]:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(x) for x in f.read().split())
    return low, high


def test_ports_are_distinct_outside_the_ephemeral_range_and_free_for_tcp_and_udp() -> None:
    low, high = _ephemeral()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(FREE_PORTS[0] <= p <= FREE_PORTS[1] and not low <= p <= high for p in ports)
    for port in ports[:20]:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        monkeypatch.setattr(natsserver, "FREE_PORTS", (port, port))  # the held port is the only choice
        monkeypatch.setattr(natsserver, "_given", set())
        assert natsserver.free_port() != port  # the kernel's choice instead
