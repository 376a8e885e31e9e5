"""Serving the app with uvicorn on a socket bound beforehand (tests bind port 0 and know the port
before the first request), stopped by an event rather than uvicorn's own signal handlers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from libs.errors import Unavailable
from services.gateway.slowheaders import header_deadline_protocol


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the process's signals belong to libs.runtime, which sets the stop event


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


async def serve_http(
    app: FastAPI,
    sock: socket.socket,
    stop: asyncio.Event,
    *,
    on_stop: Callable[[], None] = lambda: None,
    header_timeout: float = 10.0,
) -> None:
    """Answer on ``sock`` until ``stop`` is set; ``on_stop`` runs first (to end open streams). A
    connection whose request headers take longer than ``header_timeout`` seconds is closed."""
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=5,
        http=header_deadline_protocol(header_timeout),
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    on_stop()
    server.should_exit = True
    await serving
