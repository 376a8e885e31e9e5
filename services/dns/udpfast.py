"""The optional C fast path for UDP (``_udpfast.c``, built by ``make setup``): whole batches of
queries read with one recvmmsg(2) and answered with one sendmmsg(2) straight from the zone's prebuilt
answers. It answers exactly what ``Responder.fast`` would (the same parsing, the same answers, the
same rotation counter); anything else comes back to Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Serve = Callable[[int, dict[bytes, Any], int, int, bytes], tuple[int, int, int, list[tuple[bytes, Any]]]]


def load() -> Serve | None:
    try:
        from services.dns import _udpfast  # type: ignore[attr-defined]
    except ImportError:
        return None
    serve: Serve = _udpfast.serve
    return serve


def rcodes() -> tuple[int, ...]:
    """The answers the C fast path has sent, by rcode (0-15); zeros when it is not built."""
    try:
        from services.dns import _udpfast  # type: ignore[attr-defined]
    except ImportError:
        return (0,) * 16
    counts: tuple[int, ...] = _udpfast.rcodes()
    return counts
