"""Security headers on every response of the gateway (pages and API alike).

The CSP allows only the gateway's own files: no inline script or style, no other origin, no frames.
A page that needs something else is a page to change, not a policy to loosen.
"""

from __future__ import annotations

from starlette.types import Scope

from services.gateway.middleware import ResponseHeadersMiddleware

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeadersMiddleware(ResponseHeadersMiddleware):
    def headers(self, scope: Scope) -> dict[str, str]:
        return SECURITY_HEADERS
