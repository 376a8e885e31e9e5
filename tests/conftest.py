"""Shared fixtures: one real nats-server per test session (free port, JetStream in a temp dir), run
with Bay's NATS users and permissions (see tests/natsauth.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from libs.natsserver import free_port, server_config, start_nats
from libs.natsusers import NatsUsers, public_key, write_private
from tests import natsauth

# no test process binds the fixed default metrics ports (other runs on this machine, or `bay up`, may
# hold them): a test that wants a process's /metrics gives it a free port
os.environ["BAY_METRICS_LISTEN"] = ""


class NatsProcess:
    """The session's nats-server; tests may stop and start it again (same port, same data).

    Its users are Bay's (``users``, in ``store/auth``); a connection without credentials is the
    set-up (``no_auth_user``), with every right."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.users = NatsUsers(store / "auth")
        self.config = store / "nats.conf"
        auth = self.users.write_auth_config(natsauth.ROLES)
        setup = public_key(self.users.service_seed("setup"))
        conf = server_config(self.config, include=auth, extra=f"no_auth_user: {setup}")
        write_private(self.config, conf.encode())
        # where `bay nats audit-credential` looks for the server to reload (as under `bay up`)
        self.pidfile = self.users.root.parent / "nats" / "bay-nats.pid"
        self.pidfile.parent.mkdir(exist_ok=True)

    @property
    def log_file(self) -> Path:
        return self.store / "nats.log"

    def start(self) -> None:
        self.proc = start_nats(self.store, self.port, log_file=self.log_file, config_file=self.config)
        self.pidfile.write_text(f"{self.proc.pid}\n")

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
    natsauth.use(server.users)
    server.start()
    yield server
    server.stop()


async def reset_stream(server: NatsProcess) -> str:
    """Delete the BAY_EVENTS stream (the set-up may; its messages may not be deleted) and let the
    set-up make it anew, with the lease bucket, as ``bay up`` does."""

    from libs.natsconn import connect
    from libs.natssetup import set_up
    from libs.settings import CommonSettings

    if not server.running:
        server.start()
    conn = await connect(server.url, name="test-setup", wait_seconds=5)  # no credentials: the set-up
    await _delete_for_good(conn.client.jetstream(), "BAY_EVENTS")
    await set_up(conn, CommonSettings(), wait_seconds=5)
    await conn.close()
    return server.url


async def _delete_for_good(js: Any, name: str) -> None:
    """Delete a stream so that the next one of that name starts empty.

    nats-server may bring a deleted stream's messages back when one of the same name is created
    at once (its file store's flush races the deletion: seen about 1 in 40 tries here). So the stream
    is made again until it comes back empty, then that empty one is deleted, which leaves nothing."""
    import nats.js.errors

    while True:
        try:
            await js.delete_stream(name)
        except nats.js.errors.NotFoundError:
            pass
        info = await js.add_stream(name=name, subjects=["bay.ev.>"])
        if not info.state.messages:
            await js.delete_stream(name)
            return


@pytest_asyncio.fixture
async def fresh_stream(nats_server: NatsProcess) -> AsyncIterator[str]:
    """The session server with an empty BAY_EVENTS stream: every test starts from an empty log."""
    yield await reset_stream(nats_server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test still running after 60 s gets its asyncio tasks' stacks printed (then pytest-timeout
    ends it at 120 s): a hang then says where it waits, not just that the event loop is idle."""
    import asyncio
    import sys
    import threading

    loop: asyncio.AbstractEventLoop | None = None
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        pass

    def dump() -> None:
        if loop is None:
            return
        print(f"\n--- {item.nodeid} still running after 60 s; asyncio tasks: ---", file=sys.stderr)
        for task in list(asyncio.all_tasks(loop)):
            task.print_stack(limit=12, file=sys.stderr)

    timer = threading.Timer(60.0, dump)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
