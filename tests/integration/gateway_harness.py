"""An in-process gateway in front of an in-process registry, for integration tests.

``start_gateway`` builds the app over real backends (NATS, the registry's gRPC port, SQLite) and an
httpx client that calls it through ASGI; ``serve`` puts the same app on a real uvicorn socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from libs.natsserver import free_port
from services.gateway.app import create_app
from services.gateway.backends import Backends, open_backends
from services.gateway.server import bind, serve_http
from services.gateway.settings import GatewaySettings
from tests import natsauth
from tests.integration.registry_harness import RunningRegistry, start_registry


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class RunningGateway:
    settings: GatewaySettings
    backends: Backends
    app: FastAPI
    client: httpx.AsyncClient  # through ASGI, base URL http://gateway

    async def stop(self) -> None:
        await self.client.aclose()
        await self.backends.close()


async def start_gateway(
    nats_url: str, data_dir: Path, registry_port: int, **overrides: Any
) -> RunningGateway:
    settings = GatewaySettings(
        nats_url=nats_url,
        data_dir=data_dir,
        registry_addr=f"127.0.0.1:{registry_port}",
        tokens_file=data_dir / "tokens.json",  # the registry harness writes its tokens there
        nats_nkey_seed=natsauth.seed("gateway"),
        # no DNS service, deployer nor autoscaler unless a test runs one
        **{
            "dns_addr": f"127.0.0.1:{free_port()}",
            "deployer_addr": f"127.0.0.1:{free_port()}",
            "autoscaler_addr": f"127.0.0.1:{free_port()}",
            **overrides,
        },
    )
    backends = await open_backends(settings, nats_wait_seconds=5)
    app = create_app(settings, backends)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    return RunningGateway(settings, backends, app, client)


@dataclass
class ServedGateway:
    """The app on a real socket (uvicorn), until ``stop``."""

    url: str
    stop_event: asyncio.Event
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)


async def serve(gw: RunningGateway) -> ServedGateway:
    sock = bind("127.0.0.1", 0)  # listening already: requests wait in the backlog until uvicorn runs
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_http(
            gw.app,
            sock,
            stop,
            on_stop=gw.backends.closing.set,
            header_timeout=gw.settings.header_timeout_seconds,
        )
    )
    return ServedGateway(f"http://127.0.0.1:{sock.getsockname()[1]}", stop, task)


@dataclass
class SseMessage:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)


async def sse_messages(resp: httpx.Response) -> AsyncIterator[SseMessage]:
    """The blocks of a text/event-stream body (events and comment-only blocks alike)."""
    msg = SseMessage()
    async for line in resp.aiter_lines():
        if line == "":
            yield msg
            msg = SseMessage()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            msg.comments.append(value)
        elif name == "id":
            msg.id = value
        elif name == "event":
            msg.event = value
        elif name == "data":
            msg.data += value


@dataclass
class Stack:
    """A registry and a gateway in front of it, with the cluster ``local`` registered."""

    registry: RunningRegistry
    gateway: RunningGateway
    registry_running: bool = True

    @property
    def client(self) -> httpx.AsyncClient:
        return self.gateway.client

    @property
    def operator(self) -> dict[str, str]:
        return bearer(self.registry.token)

    @property
    def viewer(self) -> dict[str, str]:
        return bearer(self.registry.viewer_token)

    async def last_sequence(self) -> int:
        return await self.gateway.backends.events.last_sequence()

    async def stop_registry(self) -> None:
        if self.registry_running:
            self.registry_running = False
            await self.registry.stop()

    async def stop(self) -> None:
        await self.gateway.stop()
        await self.stop_registry()


async def start_stack(nats_url: str, data_dir: Path, **gateway_settings: Any) -> Stack:
    reg = await start_registry(nats_url, data_dir)
    gw = await start_gateway(nats_url, data_dir, reg.port, **gateway_settings)
    stack = Stack(reg, gw)
    resp = await stack.client.post(
        "/v1/clusters", json={"name": "local", "backend": "local"}, headers=stack.operator
    )
    assert resp.status_code == 201, resp.text
    return stack


def rejected_fields(resp: httpx.Response) -> list[str]:
    """The fields a 422 ``validation_failed`` answer names (failing if it is not one)."""
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "validation_failed"
    return [v["field"] for v in resp.json()["violations"]]
