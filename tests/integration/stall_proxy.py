"""A TCP proxy in front of the session's nats-server that can stall its traffic, as a congested
network or a busy server does: bytes are held, not dropped, and flow again in order on ``resume``.

``down`` is server to client (answers, deliveries), ``up`` client to server (publishes, requests). A
stall of the down direction lets a client's requests land while their answers come late or after
the client gave up on them. ``stall_after(marker)`` stalls the down direction right after the chunk
that carries ``marker`` (e.g. a subject) has reached the client.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse

from libs.natsserver import free_port

CHUNK = 65536


class StallProxy:
    def __init__(self, upstream_url: str) -> None:
        target = urlparse(upstream_url)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 4222
        self.listen_port = free_port()
        self.url = f"nats://127.0.0.1:{self.listen_port}"
        self._flowing = {"down": asyncio.Event(), "up": asyncio.Event()}
        for gate in self._flowing.values():
            gate.set()
        self._marker: bytes | None = None
        self.marker_seen = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> StallProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        return self

    async def stop(self) -> None:
        self.resume()
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    def stall(self, direction: str = "down", seconds: float | None = None) -> None:
        """Hold the traffic of ``direction`` ("down", "up" or "both"), for ``seconds`` or until
        :meth:`resume`."""
        for name in ("down", "up") if direction == "both" else (direction,):
            self._flowing[name].clear()
        if seconds is not None:
            asyncio.get_running_loop().call_later(seconds, self.resume)

    def stall_after(self, marker: bytes) -> None:
        self._marker = marker

    def resume(self) -> None:
        for gate in self._flowing.values():
            gate.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        for args in ((reader, up_writer, "up"), (up_reader, writer, "down")):
            pump = asyncio.create_task(self._pump(*args))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, direction: str) -> None:
        gate = self._flowing[direction]
        try:
            while data := await src.read(CHUNK):
                await gate.wait()
                dst.write(data)
                await dst.drain()
                if direction == "down" and self._marker is not None and self._marker in data:
                    self._marker = None
                    gate.clear()
                    self.marker_seen.set()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()
