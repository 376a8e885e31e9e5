"""decide(policy, state, observation, now) -> Decision: one evaluation of one group, pure.

The order of the rules:
1. Each metric proposes a count with the proportional rule (proportional.py: HPA's handling of
   missing samples and tasks not yet ready, and the tolerance). The largest proposal wins. A metric
   without data cannot ask for less than the current count (no scale-down on missing data); with no
   data at all nothing changes ("no data for cpu (waiting)").
2. Group totals (backlog, custom totals) carry KEDA's activation: with min 0 and every metric a total
   and inactive (below its activation, or 0), the recommendation is 0 ("scale to zero", taken through
   the down window and steps like any scale-down); from 0, an active metric starts at once at
   max(1, ceil(total / target)) ("activation"), without waiting for any window.
3. PANIC (Knative): when the average need over the short window (`up.window_s`) reaches
   `up.panic_threshold` x the ready tasks, go straight to the latest recommendation, and make no
   scale-down until `up.stable_window_s` has passed without the condition.
4. Outside panic, HPA's stabilisation: the count moves up only to the lowest recommendation of the
   up window (a rise must hold for it) and down only to the highest of the down window.
5. Cooldowns: no move in a direction within its cooldown after a move in that direction (the
   recommendation still enters the windows). A scale-down removes at most max(min_step,
   max_percent of the current count) tasks.
6. min and max are never crossed (policy.clamp); a count outside them is brought in at once (rule
   "at max"/"at min"); a move cut short by a bound names both ("panic, at max").
Every evaluation yields a Decision; `state.fold` folds it into the state for the next one.
"""

from __future__ import annotations

import math
import time

from services.autoscaler.domain.observe import Observation
from services.autoscaler.domain.policy import Policy, clamp
from services.autoscaler.domain.proportional import WITHIN_TOLERANCE, propose
from services.autoscaler.domain.record import Decision, MetricValue
from services.autoscaler.domain.state import State, fold, in_window

PANIC = "panic"
ACTIVATION = "activation"
SCALE_TO_ZERO = "scale to zero"
STEP_LIMIT = "step limit"
HOLD = "hold"


def hms(t: float) -> str:
    """UTC wall time HH:MM:SS of epoch seconds `t`, rounded up (an "until" is never early)."""
    return time.strftime("%H:%M:%S", time.gmtime(math.ceil(t)))


def _describe(metrics: tuple[MetricValue, ...]) -> str:
    parts = []
    for m in metrics:
        if m.value is None:
            parts.append(f"{m.name} no data")
        else:
            parts.append(f"{m.name} {m.value:.3g}/{m.target:.3g} -> {m.recommendation}")
    return ", ".join(parts)


def decide(policy: Policy, state: State, obs: Observation, now: float) -> Decision:
    cur = obs.current
    proposals = [(m, propose(m, obs, policy.tolerance)) for m in policy.metrics]
    metrics = tuple(MetricValue(m.key, p.value, m.target, p.recommendation, p.note) for m, p in proposals)
    no_data = [m.key for m, p in proposals if p.recommendation is None]
    have = [(m, p) for m, p in proposals if p.recommendation is not None]
    panic_before = state.panic_last is not None and now - state.panic_last < policy.up.stable_window_s

    def make(
        to: int,
        rule: str,
        reason: str,
        rec: int | None = None,
        need: float | None = None,
        over: bool = False,
        panic: bool = panic_before,
    ) -> Decision:
        return Decision(now, cur, to, rule, reason, metrics, rec, need, over, panic)

    waiting = f"no data for {', '.join(no_data)} (waiting)" if no_data else ""
    bound = clamp(policy, cur)
    if not have:
        if bound.limit:
            return make(bound.count, bound.limit, f"{bound.limit} {bound.count}; {waiting}")
        return make(cur, HOLD, waiting)

    # 1-2: the largest proposal; missing data forbids less than now; all totals inactive ask for 0
    decider, best = max(have, key=lambda h: h[1].recommendation or 0)
    rec = best.recommendation or 0
    if no_data and rec < cur:
        rec = cur
    need = max(p.need for _, p in have if p.need is not None)
    all_totals = not no_data and all(m.is_total for m, _ in proposals)
    active = any(
        m.is_total and p.value is not None and p.value > 0 and p.value >= m.activation for m, p in have
    )
    if all_totals and not active and policy.min == 0:
        rec = 0

    if bound.limit:
        return make(bound.count, bound.limit, f"{bound.limit} {bound.count}", rec, need)
    if cur == 0:
        if rec == 0 or not active:
            return make(0, HOLD, "below activation", 0, need)
        to = clamp(policy, max(1, rec)).count
        return make(to, ACTIVATION, _describe(metrics), rec, need)

    # 3: panic, on the short window's average need against the ready tasks
    window = [n for t, n in state.needs if t > now - policy.up.window_s] + [need]
    over = sum(window) / len(window) >= policy.up.panic_threshold * max(1, len(obs.ready))
    panic = over or panic_before
    panic_until = (now if over else state.panic_last or now) + policy.up.stable_window_s

    def held(reason: str) -> Decision:
        return make(cur, HOLD, reason, rec, need, over, panic)

    rule = f"proportional {decider.key}"
    if panic:
        candidate = max(cur, rec)
        if candidate > cur:
            rule = PANIC
        elif rec < cur:
            return held(f"panic until {hms(panic_until)}: no scale-down")
    else:  # 4: HPA's stabilisation, lowest of the up window and highest of the down window
        ups = [*in_window(state.lows, now, policy.up.window_s), (now, rec)]
        downs = [*in_window(state.highs, now, policy.down.window_s), (now, rec)]
        lo, hi = min(r for _, r in ups), max(r for _, r in downs)
        candidate = min(max(cur, lo), hi)
        if candidate > cur and candidate != rec:
            rule = f"stabilised (lowest of {policy.up.window_s:g} s)"
        elif candidate < cur and candidate != rec:
            rule = f"stabilised (highest of {policy.down.window_s:g} s)"
        elif candidate == cur and rec > cur:
            until = max(t for t, r in ups if r <= cur) + policy.up.window_s
            return held(f"rising, stabilising until {hms(until)}")
        elif candidate == cur and rec < cur:
            floor = clamp(policy, rec)
            if floor.limit and floor.count >= cur:  # the bound holds it, whatever the window says
                return held(floor.limit)
            until = max(t for t, r in downs if r >= cur) + policy.down.window_s
            return held(f"stabilising until {hms(until)}")
    # 5: cooldowns and the step limit; 6: the bounds
    if candidate > cur and state.last_up is not None and now < state.last_up + policy.up.cooldown_s:
        return held(f"cooldown until {hms(state.last_up + policy.up.cooldown_s)}")
    if candidate < cur and state.last_down is not None and now < state.last_down + policy.down.cooldown_s:
        return held(f"cooldown until {hms(state.last_down + policy.down.cooldown_s)}")
    if candidate < cur:
        step = max(policy.down.min_step, math.floor(cur * policy.down.max_percent / 100))
        if cur - candidate > step:
            candidate, rule = cur - step, STEP_LIMIT
        elif candidate == 0:
            rule = SCALE_TO_ZERO
    limited = clamp(policy, candidate)
    if limited.limit:  # the rule that moved it, and the bound that stopped it: "panic, at max"
        candidate, rule = limited.count, limited.limit if limited.count == cur else f"{rule}, {limited.limit}"
    if candidate == cur:
        if limited.limit:
            return held(limited.limit)
        notes = [WITHIN_TOLERANCE] if any(p.note == WITHIN_TOLERANCE for _, p in have) else []
        notes += [p.note for _, p in have if p.note and p.note != WITHIN_TOLERANCE]
        in_panic = f"panic until {hms(panic_until)}" if panic else ""
        return held("; ".join(filter(None, [*dict.fromkeys(notes), waiting, in_panic])) or "steady")
    return make(candidate, rule, _describe(metrics), rec, need, over, panic)


def step(policy: Policy, state: State, obs: Observation, now: float) -> tuple[Decision, State]:
    """decide, then fold the decision: what a running autoscaler does at each evaluation."""
    d = decide(policy, state, obs, now)
    return d, fold(state, d)
