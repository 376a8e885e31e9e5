"""The Alertmanager the gateway reads firing alerts from (``BAY_ALERTMANAGER_URL``), over its API v2.

A slow or stopped Alertmanager must not hang a page or ``bay alerts``: every call has the
setting's deadline, and whatever goes wrong (refused, late, an error status, not JSON) becomes
:class:`~libs.errors.Unavailable` naming the URL, which the HTTP edge answers with 503.
"""

from __future__ import annotations

from typing import Any

import httpx

from libs.errors import Unavailable

#: what is firing and nobody chose to hide (Alertmanager's API v2 filters)
ACTIVE = {"active": "true", "silenced": "false", "inhibited": "false"}


class AlertmanagerClient:
    def __init__(
        self, url: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    def _hint(self) -> str:
        return f"check that Alertmanager runs at {self.url} (the gateway's BAY_ALERTMANAGER_URL)"

    async def active_alerts(self) -> list[Any]:
        """Alertmanager's alerts that are active, not silenced and not inhibited, as it sends them."""
        try:
            resp = await self._http.get("/api/v2/alerts", params=ACTIVE)
        except httpx.TimeoutException as exc:
            raise Unavailable(
                f"Alertmanager ({self.url}) did not answer within {self.timeout:g} s", hint=self._hint()
            ) from exc
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"Alertmanager ({self.url}) is unreachable: {type(exc).__name__}", hint=self._hint()
            ) from exc
        if resp.status_code != 200:
            raise Unavailable(f"Alertmanager ({self.url}) answered {resp.status_code}", hint=self._hint())
        try:
            body = resp.json()
        except ValueError as exc:
            raise Unavailable(f"Alertmanager ({self.url}) sent something that is not JSON") from exc
        if not isinstance(body, list):
            raise Unavailable(f"Alertmanager ({self.url}) sent no list of alerts")
        return body

    async def close(self) -> None:
        await self._http.aclose()
