"""Shared fixtures: one real nats-server per test session (free port, JetStream in a temp dir)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from libs.natsserver import free_port, start_nats


class NatsProcess:
    """The session's nats-server; tests may stop and start it again (same port, same data)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_nats(self.store, self.port, log_file=self.store / "nats.log")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    server = NatsProcess(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


async def reset_stream(server: NatsProcess) -> str:
    """Delete the BAY_EVENTS stream (the stream itself may go; its messages may not be deleted)."""
    import nats
    import nats.js.errors

    if not server.running:
        server.start()
    nc = await nats.connect(server.url)
    try:
        await nc.jetstream().delete_stream("BAY_EVENTS")
    except nats.js.errors.NotFoundError:
        pass
    await nc.close()
    return server.url


@pytest_asyncio.fixture
async def fresh_stream(nats_server: NatsProcess) -> AsyncIterator[str]:
    """The session server with no BAY_EVENTS stream: every test starts from an empty log."""
    yield await reset_stream(nats_server)
