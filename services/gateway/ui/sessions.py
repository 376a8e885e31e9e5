"""Browser sessions of the web UI, kept server-side, and the rate limit of failed log-ins.

A browser logs in with a token once; the token then stays in the gateway's memory, behind a random
session id the browser holds as an HttpOnly cookie, so no page or script ever sees it. Each request
with the cookie authenticates the kept token again through the TokenStore, so a token taken out of
the tokens file ends its sessions too. Sessions live in one gateway process's memory: a restart
logs everyone out, which is the safe direction (nothing secret is ever written to disk for them).

A session ends after ``idle_seconds`` without a request, or at log-out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

#: the cookie the session id travels in
COOKIE = "bay_session"
#: the header a change made with the cookie must carry (the session's CSRF token)
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class Session:
    id: str
    #: the ``Authorization`` value the browser logged in with, sent on to the services as-is
    authorization: str
    user: str
    role: str
    csrf: str
    last_seen: float

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())

    def __repr__(self) -> str:  # never the token, nor the ids that stand for it
        return f"Session(user={self.user!r}, role={self.role!r})"


class SessionStore:
    """``store.create(authorization, user, role)`` → a session; ``store.get(id)`` refreshes it."""

    def __init__(self, idle_seconds: float, *, clock: Clock = time.monotonic, max_sessions: int = 10_000):
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, authorization: str, user: str, role: str) -> Session:
        now = self._clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            authorization=authorization,
            user=user,
            role=role,
            csrf=secrets.token_urlsafe(32),
            last_seen=now,
        )
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= self.max_sessions:  # bounded: the oldest one goes
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id (its idle time starts again), or None."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            found = self._sessions.get(session_id)
            if found is None:
                return None
            if now - found.last_seen > self.idle_seconds:
                del self._sessions[session_id]
                return None
            found.last_seen = now
            return found

    def delete(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        stale = [sid for sid, s in self._sessions.items() if now - s.last_seen > self.idle_seconds]
        for sid in stale:
            del self._sessions[sid]


@dataclass
class LoginLimiter:
    """At most ``failures`` failed log-ins per client address within ``window_seconds``; a success
    does not clear the count (a guesser who knows one token learns nothing by using it)."""

    failures: int
    window_seconds: float
    clock: Clock = time.monotonic
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, client: str) -> float:
        """0 when ``client`` may try now, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            times = self._trim(client, now)
            if len(times) < self.failures:
                return 0.0
            return max(0.0, times[0] + self.window_seconds - now)

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            self._trim(client, now).append(now)
            if len(self._seen) > 10_000:  # many addresses: forget those with nothing recent
                for addr in [a for a, t in self._seen.items() if not t or t[-1] < now - self.window_seconds]:
                    del self._seen[addr]

    def _trim(self, client: str, now: float) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        return times
