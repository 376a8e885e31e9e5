"""Host ports from the configured range: never two tasks on one port, freed when a task ends."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from libs.errors import Conflict
from services.scheduler.ports import PortRange


def _bindable(port: int) -> bool:
    """Skip ports something outside Bay already listens on (another service, a stray process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class PortPool:
    def __init__(self, begin: int, end: int) -> None:
        self.begin, self.end = begin, end
        self._owner: dict[int, str] = {}
        self._next = begin

    def reserve(self, task_id: str, wanted: Mapping[str, int]) -> dict[str, int]:
        """Give every named port a host port: fixed ones (non-zero) as asked, zero ones from the range.

        All or nothing: on a conflict nothing stays reserved and Conflict says which port.
        """
        fixed = {name: port for name, port in wanted.items() if port}
        for name, port in fixed.items():
            owner = self._owner.get(port)
            if owner is not None and owner != task_id:
                raise Conflict(f"port {port} ({name or 'unnamed'}) is already used by task {owner}")
        if len(set(fixed.values())) != len(fixed):
            raise Conflict(f"task {task_id} asks for the same host port twice")
        taken = set(fixed.values())
        for port in taken:
            self._owner[port] = task_id
        assigned: dict[str, int] = {}
        try:
            for name, port in wanted.items():
                assigned[name] = port or self._allocate(task_id, taken)
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
        ranges: list[PortRange] = []
        start: int | None = None
        for port in range(self.begin, self.end + 2):
            free = port <= self.end and port not in self._owner
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
            if port not in self._owner and port not in taken and _bindable(port):
                self._owner[port] = task_id
                taken.add(port)
                return port
        raise Conflict(f"no free port left in {self.begin}-{self.end}")
