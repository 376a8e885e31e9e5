"""Where a task's host is: its address when the scheduler stored one (local tasks), else its
hostname (Mesos agents) resolved through a hosts file (``BAY_DNS_HOSTS_FILE``, /etc/hosts format)
or the system resolver, in the background; answers never wait for a lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("bay.dns.hosts")


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def read_hosts_file(path: Path) -> dict[str, tuple[str, ...]]:
    """/etc/hosts format: an address, then names; ``#`` starts a comment. Names are lowercased."""
    found: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2 or not is_address(fields[0]):
            raise ValueError(f"{path}:{number}: expected an address and names, got {line.strip()!r}")
        for name in fields[1:]:
            found.setdefault(name.lower(), []).append(fields[0])
    return {name: tuple(dict.fromkeys(addrs)) for name, addrs in found.items()}


class HostBook:
    def __init__(
        self,
        static: dict[str, tuple[str, ...]] | None = None,
        *,
        refresh_seconds: float = 60.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.static = static or {}
        self.refresh_seconds = refresh_seconds
        self.on_change = on_change
        self._resolved: dict[str, tuple[str, ...]] = {}
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    def addresses(self, host: str) -> tuple[str, ...]:
        """The host's addresses now; () while a name is being resolved or when it does not resolve."""
        if not host:
            return ()
        if is_address(host):
            return (host,)
        key = host.lower()
        found = self.static.get(key)
        if found is not None:
            return found
        return self._resolved.get(key, ())

    def want(self, host: str) -> None:
        """Resolve a hostname in the background if it is new (called from the fold)."""
        if not host or is_address(host):
            return
        key = host.lower()
        if key in self.static or key in self._resolved or key in self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a pure test of the fold): nothing resolves
        self._pending.add(key)
        task = loop.create_task(self._resolve(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, host: str) -> None:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
            found = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
        except OSError as exc:
            if host not in self._resolved:
                log.warning("host %s does not resolve (%s); its tasks are not answered", host, exc)
            found = ()
        finally:
            self._pending.discard(host)
        if self._resolved.get(host) != found:
            self._resolved[host] = found
            self.on_change()

    async def settle(self, timeout: float) -> None:
        """Wait (bounded) for the lookups under way: before the port opens, so that the first
        answers already have the hosts' addresses."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def start(self) -> None:
        self._refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            for host in list(self._resolved):
                await self._resolve(host)

    async def stop(self) -> None:
        for task in [*self._tasks, *([self._refresher] if self._refresher else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
