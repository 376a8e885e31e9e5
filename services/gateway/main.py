"""The gateway process: ``python -m services.gateway``."""

from __future__ import annotations

import asyncio
import logging

from libs.runtime import run_service
from libs.telemetry import setup_telemetry
from services.gateway.app import create_app
from services.gateway.backends import open_backends
from services.gateway.server import bind, serve_http
from services.gateway.settings import GatewaySettings

log = logging.getLogger("bay.gateway")


async def serve(settings: GatewaySettings, stop: asyncio.Event) -> None:
    setup_telemetry("bay-gateway")
    host, port = settings.listen_address()
    sock = bind(host, port)
    backends = await open_backends(settings)
    try:
        app = create_app(settings, backends)
        log.info(
            "gateway listening on http://%s:%d (registry %s, schedulers %s, dns %s)",
            host,
            sock.getsockname()[1],
            settings.registry_addr,
            ", ".join(f"{c} {a}" for c, a in settings.schedulers.items()) or "none",
            settings.dns_addr,
        )
        await serve_http(
            app, sock, stop, on_stop=backends.closing.set, header_timeout=settings.header_timeout_seconds
        )
    finally:
        log.info("gateway stopping")
        await backends.close()


def main() -> None:
    run_service("gateway", GatewaySettings, serve)


if __name__ == "__main__":
    main()
