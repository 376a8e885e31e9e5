"""Fixtures of the autoscaler's source tests: a plain client of the session's nats-server (no
credentials: the set-up, with every right), and nats-servers of a test's own for users that the
session's server does not have. A test's measured figures (``record_property("figure", text)``)
are printed in the run's summary, never asserted beyond a generous deadline."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client

from libs.natsserver import free_port, server_config, start_nats
from libs.natsusers import new_seed, public_key, write_private
from tests.conftest import NatsProcess
from tests.figures import print_figures


@pytest_asyncio.fixture
async def nc(nats_server: NatsProcess) -> AsyncIterator[Client]:
    if not nats_server.running:
        nats_server.start()
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.close()


@dataclass
class OwnServer:
    """A nats-server of a test's own, run with the authorization block it was given."""

    url: str
    proc: subprocess.Popen[bytes]


@asynccontextmanager
async def own_server(tmp_path: Path, authorization: str, admin_seed: Path) -> AsyncIterator[OwnServer]:
    """Start one (JetStream in ``tmp_path``); a connection without credentials is ``admin_seed``'s
    user, which ``authorization`` must hold."""
    auth = tmp_path / "auth.conf"
    write_private(auth, authorization.encode())
    config = tmp_path / "nats.conf"
    extra = f"no_auth_user: {public_key(admin_seed)}"
    write_private(config, server_config(config, include=auth, extra=extra).encode())
    port = free_port()
    proc = await asyncio.to_thread(
        start_nats, tmp_path / "js", port, log_file=tmp_path / "nats.log", config_file=config
    )
    try:
        yield OwnServer(f"nats://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)


def seed_file(path: Path) -> Path:
    write_private(path, new_seed() + b"\n")
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_figures(terminalreporter, "autoscaler figures", under="tests/integration/autoscaler/")
