"""A deadline for a request's headers: a connection that has not sent them within
``header_timeout`` seconds of opening (or of its previous response) is closed.

uvicorn bounds only the idle time between two requests (``timeout_keep_alive``), and every byte a
client sends cancels that timer, so a client dripping its headers a byte at a time held its
connection for ever (a thousand of them held a thousand connections, without a token). This
deadline is not moved by data arriving: only complete headers disarm it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("bay.gateway")


def header_deadline_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the deadline; ``uvicorn.Config(http=...)`` takes it."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                log.debug("closing a connection that sent no complete headers in %.0fs", header_timeout)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this keep-alive connection has the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol
