"""Who is asking: what every call to a Bay service carries as gRPC metadata."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """The ``authorization`` to send (``Bearer <token>``, checked by the called service) and the
    ``x-correlation-id`` that ties the call to the request or command it serves (logs, traces)."""

    authorization: str | None = None
    correlation_id: str = ""

    @classmethod
    def bearer(cls, token: str, correlation_id: str = "") -> Caller:
        """A service calling on its own behalf, with its own token."""
        return cls(f"Bearer {token}", correlation_id)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        md: list[tuple[str, str]] = []
        if self.correlation_id:
            md.append(("x-correlation-id", self.correlation_id))
        if self.authorization:
            md.append(("authorization", self.authorization))
        return tuple(md)
