"""The autoscaler's memory of one group, rebuilt by folding its decision records in order.

Only what the next decision reads is kept, so the state stays small at one evaluation a second:
- `highs`: the recommendations that can still be the highest of the down window (each strictly above
  every later one: a sliding-window maximum), `lows` the same for the lowest of the up window;
- `needs`: (time, need) over the short window, whose average decides panic;
- `panic_since_last`: when the panic condition last held, None out of panic;
- `last_up`/`last_down`: when the last move in each direction was decided (the cooldowns).
Entries older than the policy's windows are dropped as records are folded, so folding the records of
the last `keep_s` seconds from an empty state gives the same state as the uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from services.autoscaler.domain.policy import Policy
from services.autoscaler.domain.record import Decision

Entry = tuple[float, int]


@dataclass(frozen=True)
class State:
    up_keep_s: float = 6.0
    down_keep_s: float = 300.0
    highs: tuple[Entry, ...] = ()
    lows: tuple[Entry, ...] = ()
    needs: tuple[tuple[float, float], ...] = ()
    panic_last: float | None = None
    last_up: float | None = None
    last_down: float | None = None
    last_at: float | None = None
    keep_s: float = 300.0  # how far back records matter: replaying these seconds of them rebuilds the state

    @classmethod
    def initial(cls, policy: Policy) -> State:
        up, down = policy.up, policy.down
        keep = max(up.window_s, up.stable_window_s, up.cooldown_s, down.window_s, down.cooldown_s)
        return cls(up_keep_s=up.window_s, down_keep_s=down.window_s, keep_s=keep)

    def with_policy(self, policy: Policy) -> State:
        """The same memory under a changed policy's windows (a longer window cannot bring back what
        a shorter one already dropped)."""
        fresh = State.initial(policy)
        return replace(self, up_keep_s=fresh.up_keep_s, down_keep_s=fresh.down_keep_s, keep_s=fresh.keep_s)


def in_window(entries: Iterable[Entry], now: float, window_s: float) -> list[Entry]:
    """Entries younger than the window: a recommendation made at t counts while t > now - window."""
    return [e for e in entries if e[0] > now - window_s]


def _push_high(entries: tuple[Entry, ...], e: Entry, now: float, keep: float) -> tuple[Entry, ...]:
    kept = [x for x in entries if x[0] > now - keep and x[1] > e[1]]
    return (*kept, e)


def _push_low(entries: tuple[Entry, ...], e: Entry, now: float, keep: float) -> tuple[Entry, ...]:
    kept = [x for x in entries if x[0] > now - keep and x[1] < e[1]]
    return (*kept, e)


def fold(state: State, d: Decision) -> State:
    """The state after decision `d` (records must come in time order)."""
    now = d.at
    highs, lows, needs = state.highs, state.lows, state.needs
    if d.recommendation is not None:
        highs = _push_high(highs, (now, d.recommendation), now, state.down_keep_s)
        lows = _push_low(lows, (now, d.recommendation), now, state.up_keep_s)
    needs = tuple(n for n in needs if n[0] > now - state.up_keep_s)
    if d.need is not None:
        needs = (*needs, (now, d.need))
    panic_last = now if d.over_panic else (state.panic_last if d.panic else None)
    return replace(
        state,
        highs=highs,
        lows=lows,
        needs=needs,
        panic_last=panic_last,
        last_up=now if d.to > d.frm else state.last_up,
        last_down=now if d.to < d.frm else state.last_down,
        last_at=now,
    )


def rebuild(policy: Policy, records: Iterable[Decision]) -> State:
    """The state a restarted autoscaler resumes from: its records folded in order."""
    state = State.initial(policy)
    for d in records:
        state = fold(state, d)
    return state


def state_record(state: State) -> dict[str, Any]:
    """The state as a plain dict: a snapshot to log, so a restart folds only the records after it."""
    return asdict(state)


def state_from_record(r: dict[str, Any]) -> State:
    return State(
        up_keep_s=float(r["up_keep_s"]),
        down_keep_s=float(r["down_keep_s"]),
        highs=tuple((float(t), int(v)) for t, v in r["highs"]),
        lows=tuple((float(t), int(v)) for t, v in r["lows"]),
        needs=tuple((float(t), float(v)) for t, v in r["needs"]),
        panic_last=r["panic_last"],
        last_up=r["last_up"],
        last_down=r["last_down"],
        last_at=r["last_at"],
        keep_s=float(r["keep_s"]),
    )
