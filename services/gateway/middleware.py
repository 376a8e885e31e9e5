"""Correlation ids: every request has one (the caller's ``X-Correlation-ID`` or a new UUID).

It is put in ``request.state.correlation_id``, sent on to the registry as ``x-correlation-id`` gRPC
metadata (and so into the events a command appends), and echoed in the response header.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Correlation-ID"
# what may travel as gRPC metadata and into events: printable, short
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def correlation_id_from(value: str | None) -> str:
    if value and _ACCEPTABLE.match(value):
        return value
    return str(uuid.uuid4())


class ResponseHeadersMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware, so streamed answers pass untouched): sets the headers
    :meth:`headers` gives for a request on its answer, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def headers(self, scope: Scope) -> dict[str, str]:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CorrelationIdMiddleware(ResponseHeadersMiddleware):
    def headers(self, scope: Scope) -> dict[str, str]:
        cid = correlation_id_from(Headers(scope=scope).get(HEADER))
        scope.setdefault("state", {})["correlation_id"] = cid
        return {HEADER: cid}
