"""Running a service process: settings read once, logging, uvloop, graceful stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from libs.errors import BayError
from libs.metrics import PROCESS, start_metrics
from libs.settings import CommonSettings

T = TypeVar("T", bound=CommonSettings)


def setup_logging(name: str, level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {name:<9} %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("nats").setLevel(logging.WARNING)


def run_service(
    name: str, settings_cls: type[T], serve: Callable[[T, asyncio.Event], Awaitable[None]]
) -> None:
    """Build the settings, then ``serve(settings, stop)`` until a signal sets ``stop``."""
    settings = settings_cls()
    setup_logging(name, settings.log_level)
    PROCESS.set_service(name)
    os.umask(0o077)  # what a service writes (stores, snapshots, bay.db, credentials) is its own alone

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        metrics = await start_metrics(settings.metrics_listen, PROCESS.registry, PROCESS.refresh)
        try:
            await serve(settings, stop)
        finally:
            if metrics is not None:
                await metrics.stop()

    try:
        import uvloop

        uvloop.run(runner())
    except BayError as exc:
        logging.getLogger(f"bay.{name}").error("%s (%s)", exc.message, exc.hint)
        sys.exit(2)
    except KeyboardInterrupt:
        pass
