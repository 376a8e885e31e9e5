"""Host ports from the configured range: never two tasks on one port, never a port another process
holds (:mod:`.netports`), freed when a task ends."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping

from libs.errors import Conflict
from services.scheduler.backends.local.netports import held_ports
from services.scheduler.ports import PortRange

#: how long a reading of the held ports is used (reading /proc/net costs milliseconds, and a round
#: asks for the free ports every time)
HELD_FRESH_SECONDS = 2.0


def bindable(port: int) -> bool:
    """Can a task listen on ``port`` (TCP and UDP, IPv4 and IPv6) right now? A probe, for the ports
    about to be handed out: what was read from /proc/net may be a moment old."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET6, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # the IPv4 port too
            try:
                sock.bind(("::", port))
            except OSError:
                return False
    return True


class PortPool:
    def __init__(
        self,
        begin: int,
        end: int,
        held: Callable[[int, int], set[int]] = held_ports,
        probe: Callable[[int], bool] = bindable,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.begin, self.end = begin, end
        self._owner: dict[int, str] = {}
        self._next = begin
        self._read_held = held
        self._probe = probe
        self._clock = clock
        self._held: set[int] = set()  # ports of the range other processes' sockets held when last read
        self._held_at = -HELD_FRESH_SECONDS

    def held(self) -> set[int]:
        """The ports other processes hold, as last read (read again when older than a moment)."""
        now = self._clock()
        if now - self._held_at >= HELD_FRESH_SECONDS:
            self._held = self._read_held(self.begin, self.end)
            self._held_at = now
        return self._held

    def reserve(self, task_id: str, wanted: Mapping[str, int]) -> dict[str, int]:
        """Give every named port a host port: fixed ones (non-zero) as asked, zero ones from the range.

        All or nothing: on a conflict nothing stays reserved and Conflict says which port.
        """
        fixed = {name: port for name, port in wanted.items() if port}
        held = self.held()
        for name, port in fixed.items():
            owner = self._owner.get(port)
            if owner is not None and owner != task_id:
                raise Conflict(f"port {port} ({name or 'unnamed'}) is already used by task {owner}")
            if owner is None and (port in held or not self._probe(port)):
                held.add(port)  # not offered again until the next reading says it is free
                raise Conflict(f"port {port} ({name or 'unnamed'}) is held by another process on this host")
        if len(set(fixed.values())) != len(fixed):
            raise Conflict(f"task {task_id} asks for the same host port twice")
        taken = set(fixed.values())
        for port in taken:
            self._owner[port] = task_id
        assigned: dict[str, int] = {}
        try:
            for name, port in wanted.items():
                assigned[name] = port or self._allocate(task_id, taken | held)
        except Conflict:
            self.release(task_id)
            raise
        return assigned

    def adopt(self, task_id: str, ports: Mapping[str, int]) -> None:
        """Mark the ports of a re-adopted task as used."""
        for port in ports.values():
            self._owner[port] = task_id

    def release(self, task_id: str) -> None:
        for port in [p for p, owner in self._owner.items() if owner == task_id]:
            del self._owner[port]

    def free_ranges(self) -> tuple[PortRange, ...]:
        """The ports no task has and no other process holds (what the host offers)."""
        ranges: list[PortRange] = []
        start: int | None = None
        held = self.held()
        for port in range(self.begin, self.end + 2):
            free = port <= self.end and port not in self._owner and port not in held
            if free and start is None:
                start = port
            elif not free and start is not None:
                ranges.append(PortRange(start, port - 1))
                start = None
        return tuple(ranges)

    def _allocate(self, task_id: str, taken: set[int]) -> int:
        size = self.end - self.begin + 1
        for _ in range(size):
            port = self._next
            self._next = self.begin + (port - self.begin + 1) % size  # round robin: fewer reuses
            if port not in self._owner and port not in taken and self._probe(port):
                self._owner[port] = task_id
                taken.add(port)
                return port
        raise Conflict(f"no free port left in {self.begin}-{self.end}")
