"""The one ``host:port`` parser: IPv6 in brackets, default ports, and errors that name the setting."""

from __future__ import annotations

import pytest

from libs.addresses import format_host_port, parse_host_port
from libs.errors import ValidationFailed


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("registry:50051", "registry", 50051),
        ("[::1]:1053", "::1", 1053),
        ("[2001:db8::1]:65535", "2001:db8::1", 65535),
        ("  10.0.0.1:53 ", "10.0.0.1", 53),
    ],
)
def test_host_and_port(text: str, host: str, port: int) -> None:
    assert parse_host_port(text) == (host, port)


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("10.0.0.2", "10.0.0.2", 53),
        ("10.0.0.3:5300", "10.0.0.3", 5300),
        ("[::1]", "::1", 53),
        ("2001:db8::53", "2001:db8::53", 53),  # bare IPv6: no port can follow it
        ("dns.example", "dns.example", 53),
    ],
)
def test_default_port(text: str, host: str, port: int) -> None:
    assert parse_host_port(text, 53) == (host, port)


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "no host"),
        ("127.0.0.1", "no port"),
        (":8080", "no host"),
        ("127.0.0.1:", "empty port"),
        ("127.0.0.1:http", "not a number"),
        ("127.0.0.1:65536", "not in 1..65535"),
        ("127.0.0.1:0", "not in 1..65535"),
        ("::1:8080", "brackets"),
        ("[::1:8080", "missing ']'"),
        ("[::1]8080", "expected ':port' after ']'"),
        ("[10.0.0.1]:53", "only for IPv6"),
        ("[::1]:", "empty port"),
        ("my host:80", "spaces"),
    ],
)
def test_bad_input_names_the_field(text: str, why: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_host_port(text, field="BAY_REGISTRY_ADDR")
    (violation,) = info.value.violations
    assert violation.field == "BAY_REGISTRY_ADDR"
    assert repr(text) in violation.description and why in violation.description
    assert "host:port" in violation.description


def test_port_zero_for_listen_addresses() -> None:
    assert parse_host_port("127.0.0.1:0", allow_zero=True) == ("127.0.0.1", 0)


def test_default_port_is_named_in_the_message() -> None:
    with pytest.raises(ValidationFailed, match="port 53 when left out"):
        parse_host_port("10.0.0.1:x", 53)


@pytest.mark.parametrize("text", ["127.0.0.1:8080", "[::1]:53", "registry:50051"])
def test_format_is_the_inverse(text: str) -> None:
    assert format_host_port(*parse_host_port(text)) == text
