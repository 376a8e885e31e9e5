"""``host:port`` as Bay's settings spell addresses, parsed in one place.

Accepted: ``127.0.0.1:8080``, ``registry:50051``, ``[::1]:1053``; with a ``default_port`` also a
bare host (``10.0.0.2``, ``[::1]``, ``2001:db8::53``: a bare IPv6 address has no port, since its
last group could not be told from one). A bad address is a :class:`~libs.errors.ValidationFailed`
naming the setting or field it came from, so the message says which variable to fix.
"""

from __future__ import annotations

from libs.errors import FieldViolation, ValidationFailed

__all__ = ["HOST_PORT_RE", "format_host_port", "parse_host_port"]

#: host:port as a pattern, for schemas only (what is accepted is :func:`parse_host_port`'s): the
#: host a name, an IPv4 address or a bracketed IPv6 one, the port 1-65535 (it reads the same as a JSON
#: Schema pattern, which the REST API's document declares)
HOST_PORT_RE = (
    r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
    r":(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})$"
)


def parse_host_port(
    text: str,
    default_port: int | None = None,
    *,
    field: str = "address",
    allow_zero: bool = False,
) -> tuple[str, int]:
    """``text`` as ``(host, port)``, the host without IPv6 brackets.

    ``allow_zero``: port 0 is allowed (a listen address: "any free port").
    """
    item = text.strip()
    form = "host:port (e.g. 127.0.0.1:8080, [::1]:8080)"
    if default_port is not None:
        form = f"host or host:port (port {default_port} when left out)"

    def bad(why: str) -> ValidationFailed:
        return ValidationFailed([FieldViolation(field, f"must be {form}, not {text!r}: {why}")])

    port_text = ""
    if item.startswith("["):
        host, closed, rest = item[1:].partition("]")
        if not closed:
            raise bad("missing ']'")
        if ":" not in host:
            raise bad("brackets are only for IPv6 addresses")
        if rest:
            if not rest.startswith(":"):
                raise bad("expected ':port' after ']'")
            port_text = rest[1:]
            if not port_text:
                raise bad("empty port")
    elif item.count(":") > 1:
        host = item  # a bare IPv6 address
        if default_port is None:
            raise bad("an IPv6 address with a port goes in brackets")
    else:
        host, colon, port_text = item.partition(":")
        if colon and not port_text:
            raise bad("empty port")
    if not host:
        raise bad("no host")
    if any(c.isspace() for c in host):
        raise bad("spaces in the host")
    if not port_text:
        if default_port is None:
            raise bad("no port")
        return host, default_port
    if not port_text.isdigit():
        raise bad(f"port {port_text!r} is not a number")
    port = int(port_text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise bad(f"port {port} is not in {0 if allow_zero else 1}..65535")
    return host, port


def format_host_port(host: str, port: int) -> str:
    """The inverse: ``("::1", 53)`` -> ``[::1]:53``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
