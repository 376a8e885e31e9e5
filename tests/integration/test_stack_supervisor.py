"""The stack supervisor in-process, running the real registry on the session nats-server.

It must: write the admin token (0600), start the registry in its own process group, register the
cluster ``local`` once, say ready, restart a killed registry with the announced backoff, refuse a
second supervisor on the same data dir, and leave no process behind when stopped.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import stat
from pathlib import Path

import grpc
import nats
import pytest
from bay.v1 import registry_pb2, registry_pb2_grpc

from libs.natsserver import free_port
from services.cli.stack.output import Output
from services.cli.stack.readiness import registry_serving
from services.cli.stack.settings import StackSettings
from services.cli.stack.supervisor import Supervisor
from services.cli.stack.table import ServiceProcess

REGISTRY_ONLY = (ServiceProcess("registry", "services.registry", registry_serving),)


class Lines(io.StringIO):
    """The supervisor's stdout, as lines a test can wait for."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.lines.extend(text.splitlines())
        self.changed.set()
        return len(text)

    async def wait_for(self, pattern: str, timeout: float = 20.0, start: int = 0) -> re.Match[str]:
        async def scan() -> re.Match[str]:
            while True:
                for line in self.lines[start:]:
                    if m := re.search(pattern, line):
                        return m
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines)) from None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _clusters(settings: StackSettings, token: str) -> list[str]:
    async with grpc.aio.insecure_channel(settings.registry_address) as ch:
        reply = await registry_pb2_grpc.RegistryStub(ch).ListClusters(
            registry_pb2.ListClustersRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=5
        )
    return [f"{c.name}/{c.backend}" for c in reply.clusters]


async def _cluster_events(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info("BAY_EVENTS", subjects_filter="bay.ev.cluster.>")
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


def _settings(tmp_path: Path, nats_url: str) -> StackSettings:
    return StackSettings(
        data_dir=tmp_path / ".bay",
        nats_url=nats_url,
        registry_listen=f"127.0.0.1:{free_port()}",
        gateway_listen=f"127.0.0.1:{free_port()}",
    )


async def test_supervisor_runs_restarts_and_stops_the_registry(tmp_path: Path, fresh_stream: str) -> None:
    settings = _settings(tmp_path, fresh_stream)
    out = Lines()
    sup = Supervisor(settings, REGISTRY_ONLY, Output(out))
    run = asyncio.create_task(sup.run(handle_signals=False))
    try:
        await out.wait_for(
            r"^bay: ready — gateway http://127\.0\.0\.1:\d+, registry 127\.0\.0\.1:\d+, nats nats://"
        )
        token_file = tmp_path / ".bay" / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert not any(token in line for line in out.lines), "the token must never be printed"
        assert await _clusters(settings, token) == ["local/local"]
        first = int((await out.wait_for(r"^bay: registry started \(pid (\d+)\)")).group(1))
        assert os.getpgid(first) == first, "each service leads its own process group"
        assert any(line.startswith("registry | ") for line in out.lines), "service output is prefixed"

        # a second supervisor on the same data dir is refused, and says why
        other = Lines()
        clash = StackSettings(
            data_dir=tmp_path / ".bay",
            nats_url=fresh_stream,
            registry_listen=f"127.0.0.1:{free_port()}",
            gateway_listen=f"127.0.0.1:{free_port()}",
        )
        assert (
            await asyncio.wait_for(
                Supervisor(clash, REGISTRY_ONLY, Output(other)).run(handle_signals=False), 10
            )
            == 1
        )
        assert any("another `bay up` is using" in line for line in other.lines)

        os.kill(first, 9)
        mark = len(out.lines)
        await out.wait_for(r"^bay: registry exited \(signal 9\); restarting in 1\.0s$", start=mark)
        second = int((await out.wait_for(r"^bay: registry restarted \(pid (\d+)\)$", start=mark)).group(1))
        assert second != first
        await asyncio.wait_for(registry_serving(settings), 20)
        assert await _clusters(settings, token) == ["local/local"]
    finally:
        sup.stop()
        code = await asyncio.wait_for(run, 20)
    assert code == 0
    assert _gone(first) and _gone(second)
    assert out.lines[-1] == "bay: stopped"
    events_after_first_run = await _cluster_events(fresh_stream)
    assert events_after_first_run == 1

    # a second start on the same data: same token, and registering `local` again appends nothing
    out2 = Lines()
    sup2 = Supervisor(_settings(tmp_path, fresh_stream), REGISTRY_ONLY, Output(out2))
    run2 = asyncio.create_task(sup2.run(handle_signals=False))
    try:
        await out2.wait_for(r"^bay: ready — ")
        assert (tmp_path / ".bay" / "admin.token").read_text().strip() == token
    finally:
        sup2.stop()
        assert await asyncio.wait_for(run2, 20) == 0
    assert await _cluster_events(fresh_stream) == 1


async def test_a_taken_port_is_refused_with_the_variable_to_change(tmp_path: Path, fresh_stream: str) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = StackSettings(
            data_dir=tmp_path / ".bay",
            nats_url=fresh_stream,
            registry_listen=f"127.0.0.1:{port}",
            gateway_listen=f"127.0.0.1:{free_port()}",
        )
        out = Lines()
        assert (
            await asyncio.wait_for(
                Supervisor(settings, REGISTRY_ONLY, Output(out)).run(handle_signals=False), 10
            )
            == 1
        )
    assert any(
        f"127.0.0.1:{port} is already in use" in line and "BAY_REGISTRY_LISTEN" in line for line in out.lines
    )


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("BAY_NATS_URL", "BAY_TOKENS_FILE", "BAY_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
