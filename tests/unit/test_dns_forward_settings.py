"""The forwarder's client allow-list and the parsers of its settings (no I/O)."""

from __future__ import annotations

import pytest

from services.dns.forward import Forwarder, parse_networks, parse_upstreams

LOCAL = parse_networks("127.0.0.0/8,::1/128")


def test_allowed_networks() -> None:
    forwarder = Forwarder([("127.0.0.1", 53)], networks=parse_networks("127.0.0.0/8, ::1/128, 10.1.0.0/16"))
    assert forwarder.allowed("127.0.0.1")
    assert forwarder.allowed("127.9.8.7")
    assert forwarder.allowed("::1")
    assert forwarder.allowed("10.1.200.3")
    assert forwarder.allowed("::ffff:127.0.0.1")  # IPv4 client on a dual-stack socket
    assert not forwarder.allowed("10.2.0.1")
    assert not forwarder.allowed("192.0.2.1")
    assert not forwarder.allowed("::2")
    assert not forwarder.allowed("not an address")
    default_only = Forwarder([("127.0.0.1", 53)], networks=LOCAL)
    assert default_only.allowed("127.0.0.1") and not default_only.allowed("10.1.200.3")
    assert not Forwarder([("127.0.0.1", 53)], networks=[]).allowed("127.0.0.1")


def test_forwarder_needs_upstreams() -> None:
    with pytest.raises(ValueError, match="upstream"):
        Forwarder([], networks=LOCAL)


def test_parse_upstreams() -> None:
    assert parse_upstreams("1.2.3.4, [::1]:5300, 10.0.0.1:53") == [
        ("1.2.3.4", 53),
        ("::1", 5300),
        ("10.0.0.1", 53),
    ]
    assert parse_upstreams("10.0.0.2,10.0.0.3:5300") == [("10.0.0.2", 53), ("10.0.0.3", 5300)]
    assert parse_upstreams("2001:db8::53, [2001:db8::54]") == [("2001:db8::53", 53), ("2001:db8::54", 53)]
    assert parse_upstreams("") == [] and parse_upstreams(" , ") == []


@pytest.mark.parametrize(
    "text, bad",
    [
        ("1.2.3.4, dns.example:53", "dns.example:53"),
        ("1.2.3.4:0", "1.2.3.4:0"),
        ("1.2.3.4:65536", "1.2.3.4:65536"),
        ("1.2.3.4:", "1.2.3.4:"),
        ("1.2.3.4:x", "1.2.3.4:x"),
        ("10.0.0.1, [::1:53", "[::1:53"),
        ("[::1]53", "[::1]53"),
        ("[10.0.0.1]:53", "[10.0.0.1]:53"),
        ("300.1.1.1", "300.1.1.1"),
    ],
)
def test_parse_upstreams_errors_name_the_item(text: str, bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_upstreams(text)
    assert repr(bad) in str(info.value)


def test_parse_networks() -> None:
    assert parse_networks("127.0.0.0/8, ::1/128") == LOCAL
    assert [str(n) for n in parse_networks("10.1.2.3/16,192.0.2.7,fd00::/8")] == [
        "10.1.0.0/16",
        "192.0.2.7/32",
        "fd00::/8",
    ]
    assert parse_networks("") == []
    for text, bad in [
        ("10.0.0.0/8, 300.0.0.0/8", "300.0.0.0/8"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("lan", "lan"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_networks(text)
        assert repr(bad) in str(info.value)
