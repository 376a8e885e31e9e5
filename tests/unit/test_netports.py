"""Reading which ports other sockets hold, from tables in /proc/net's own format."""

from __future__ import annotations

from pathlib import Path

from services.scheduler.backends.local.netports import held_ports

HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def row(local: str, state: str) -> str:
    return f"   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 1\n"


def test_listening_tcp_and_bound_udp_count_connections_do_not(tmp_path: Path) -> None:
    (tmp_path / "tcp").write_text(HEAD + row("0100007F:7A3D", "0A") + row("0100007F:7A3E", "01"))
    (tmp_path / "tcp6").write_text(HEAD + row("00000000000000000000000000000000:7A3F", "0A"))
    (tmp_path / "udp").write_text(HEAD + row("00000000:7A40", "07") + row("00000000:0035", "07"))
    # no udp6 table (a host without IPv6): skipped
    assert held_ports(31000, 31999, tmp_path) == {0x7A3D, 0x7A3F, 0x7A40}


def test_this_machines_own_tables_parse(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert port in held_ports(port, port)


def test_the_pool_offers_no_held_port_and_reads_again_after_a_moment() -> None:
    import pytest

    from libs.errors import Conflict
    from services.scheduler.backends.local.portpool import HELD_FRESH_SECONDS, PortPool

    now = [0.0]
    held = {31001}
    busy = {31003}  # held since the last reading: only the probe knows
    pool = PortPool(
        31000, 31004, held=lambda b, e: set(held), probe=lambda p: p not in busy, clock=lambda: now[0]
    )
    assert [(r.begin, r.end) for r in pool.free_ranges()] == [(31000, 31000), (31002, 31004)]
    assert pool.reserve("t.1", {"a": 0, "b": 0}) == {"a": 31000, "b": 31002}  # 31001 held
    with pytest.raises(Conflict, match=r"31003.*another process"):
        pool.reserve("t.2", {"http": 31003})
    assert [(r.begin, r.end) for r in pool.free_ranges()] == [(31004, 31004)]  # no longer offered
    held.clear()
    busy.clear()
    now[0] += HELD_FRESH_SECONDS
    assert [(r.begin, r.end) for r in pool.free_ranges()] == [(31001, 31001), (31003, 31004)]
