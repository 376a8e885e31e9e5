"""When to restart a service that died: 1 s, doubling to 30 s, back to 1 s after 60 s of good running.

Pure (no clock): the supervisor says how long the process ran.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartBackoff:
    initial: float = 1.0
    cap: float = 30.0
    reset_after: float = 60.0
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.initial

    def delay(self, ran_for: float) -> float:
        """The wait before restarting a process that ran ``ran_for`` seconds; advances the backoff."""
        if ran_for >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay
