"""The sockets: UDP drained in batches on readiness (one wake-up answers every queued query), and
TCP with two-byte length prefixes (RFC 7766: several queries per connection, idle connections closed,
a bounded number of clients).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Coroutine
from typing import Any

from libs.addresses import parse_host_port
from libs.errors import Unavailable
from services.dns.responder import Responder
from services.dns.udpfast import Serve

log = logging.getLogger("bay.dns")

UDP_BATCH = 256  # answered per wake-up at most, so TCP and the event log get their turn
C_BATCH = 64  # queries one call of the C fast path reads (BATCH in _udpfast.c)
UDP_MAX = 4096  # queries are small; a bigger one arrives cut and gets FORMERR (recvfrom allocates this much)


def bind_sockets(listen: str, *, reuse_port: bool) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on one address; a clear error when it is taken or not allowed."""
    host, port = parse_host_port(listen, field="BAY_DNS_LISTEN", allow_zero=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        for s in (udp, tcp):
            if reuse_port:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.setblocking(False)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        udp.bind((host, port))
        tcp.bind((host, udp.getsockname()[1]))  # port 0: the same port for both
        tcp.listen(128)
    except OSError as exc:
        udp.close()
        tcp.close()
        why = {errno.EADDRINUSE: "already in use", errno.EACCES: "not allowed (port 53 needs privilege)"}
        raise Unavailable(
            f"DNS cannot listen on {listen}: {why.get(exc.errno or 0, exc.strerror)}",
            hint="set BAY_DNS_LISTEN",
        ) from exc
    return udp, tcp


class DnsServer:
    def __init__(
        self,
        responder: Responder,
        udp: socket.socket,
        tcp: socket.socket,
        *,
        tcp_clients: int = 256,
        tcp_idle_seconds: float = 10.0,
        fast_path: Serve | None = None,
    ) -> None:
        self.responder = responder
        self.fast_path = fast_path
        self.udp = udp
        self.tcp = tcp
        self.tcp_clients = tcp_clients
        self.tcp_idle_seconds = tcp_idle_seconds
        self._clients: set[asyncio.Task[None]] = set()
        self._tcp_server: asyncio.Server | None = None
        self._slow: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return int(self.udp.getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.udp.fileno(), self._drain_c if self.fast_path else self._drain)
        self._tcp_server = await asyncio.start_server(self._tcp_client, sock=self.tcp)

    def _drain(self) -> None:
        recv, send, fast = self.udp.recvfrom, self.udp.sendto, self.responder.fast
        for _ in range(UDP_BATCH):
            try:
                data, client = recv(UDP_MAX)
            except BlockingIOError:
                return
            except OSError:
                continue  # an ICMP error from an earlier reply: nothing to read for it
            try:
                out = fast(data)
            except Exception:  # a bug must cost one query, never the server
                log.exception("answering a query failed")
                continue
            if out is None:
                self._spawn(self._udp_slow(data, client))
                continue
            try:
                send(out, client)
            except OSError:
                self.responder.counters.dropped += 1  # send buffer full: the client retries

    def _drain_c(self) -> None:
        """The C fast path answers batches; what it hands back is answered here, one by one."""
        assert self.fast_path is not None
        serve, fd, r = self.fast_path, self.udp.fileno(), self.responder
        cache = r.zone.cache
        for _ in range(UDP_BATCH // C_BATCH):
            received, answered, r.turn, misses = serve(fd, cache, r.turn, r.udp_payload, r.opt)
            r.c_answered += answered
            for data, client in misses:
                self._answer(data, client)
            if received == 0:
                return

    def _answer(self, data: bytes, client: tuple[str, int]) -> None:
        try:
            out = self.responder.fast(data)
        except Exception:
            log.exception("answering a query failed")
            return
        if out is None:
            self._spawn(self._udp_slow(data, client))
            return
        try:
            self.udp.sendto(out, client)
        except OSError:
            self.responder.counters.dropped += 1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._slow.add(task)
        task.add_done_callback(self._slow.discard)

    async def _udp_slow(self, data: bytes, client: tuple[str, int]) -> None:
        try:
            out = await self.responder.slow(data, client[0])
        except Exception:
            log.exception("answering a query failed")
            return
        if out is not None:
            try:
                self.udp.sendto(out, client)
            except OSError:
                self.responder.counters.dropped += 1

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= self.tcp_clients:
            writer.close()
            return
        self._clients.add(task)
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_seconds)
                size = int.from_bytes(head, "big")
                data = await asyncio.wait_for(reader.readexactly(size), self.tcp_idle_seconds)
                out = self.responder.fast(data, tcp=True)
                if out is None:
                    out = await self.responder.slow(data, client, tcp=True)
                if out is None:
                    break  # nothing to answer: a client that sends junk loses its connection
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("TCP client %s failed", client)
        finally:
            self._clients.discard(task)
            writer.close()

    async def stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self.udp.fileno())
        if self._tcp_server is not None:
            self._tcp_server.close()
        for task in [*self._clients, *self._slow]:
            task.cancel()
        await asyncio.gather(*self._clients, *self._slow, return_exceptions=True)
        self.udp.close()
        self.tcp.close()
