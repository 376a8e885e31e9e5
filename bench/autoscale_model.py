"""``autoscale-model``: Bay's autoscaling decision against a model of Kubernetes HPA's defaults on the
same recorded load, in one run (issue 12's side-by-side figure).

Both engines are the real code: Bay's ``services.autoscaler.domain`` (decide + fold, evaluated once a
second as the service does) and ``HpaModel`` (15 s sync, tolerance 0.1, scale-up max(100%, 4 pods)
per 15 s, no up-stabilisation, 300 s down-stabilisation, 100% per 15 s down; metrics-server's lag and
the CPU initialisation period left out, both of which would only slow HPA). The world
(``domain/sim.py``) starts a task ``START_LATENCY`` seconds after it is asked for and spreads the
load evenly over the ready tasks. What this does not measure: real tasks, real usage samples and the
registry/scheduler path; those are the service's figures, not this one's.

Traces:
- a step from 10 tasks' worth of load to 100 tasks' worth (CPU, target 50%): seconds to 100 ready;
- a noisy steady load (±15% around 40 tasks' worth, 10 minutes): direction changes (target 0);
- the load gone after the step: the scale-down timeline (no step before the 300 s window).
"""

from __future__ import annotations

import itertools

from bench.report import Result
from services.autoscaler.domain.hpa import HpaConfig, HpaModel
from services.autoscaler.domain.policy import MetricTarget, Policy
from services.autoscaler.domain.sim import (
    BayEngine,
    race,
    simulate,
    simulate_counts,
    step_trace,
    time_to_reach,
)

START_LATENCY = 4.0  # seconds from asked for to ready (a small HTTP task with a health check)
TARGET = 0.5
TARGET_S = 10.0


def _policy() -> Policy:
    return Policy(min=10, max=100, metrics=(MetricTarget("cpu", TARGET),))


def _direction_changes(series: list[tuple[float, int]]) -> tuple[int, int]:
    """(moves, changes of direction) of a count series."""
    moves, changes, last = 0, 0, 0
    for (_, a), (_, b) in itertools.pairwise(series):
        if b != a:
            moves += 1
            sign = 1 if b > a else -1
            changes += 1 if last and sign != last else 0
            last = sign
    return moves, changes


async def run_autoscale_model() -> Result:
    res = Result("autoscale-model", "Bay's autoscaling decision vs a model of HPA's defaults, same trace")
    res.params = {
        "metric": f"cpu utilisation, target {TARGET:.0%}",
        "task start": f"{START_LATENCY:g} s from asked for to ready (simulated)",
        "Bay": "services/autoscaler/domain, evaluated every 1 s (the service's tick)",
        "HPA": "15 s sync, tolerance 0.1, up max(100%, 4 pods)/15 s, down-stabilisation 300 s",
    }
    at = 60.0
    step = step_trace(10 * TARGET, 100 * TARGET, at)
    hpa = HpaModel(HpaConfig(min=10, max=100, target=TARGET))
    r = race(BayEngine(_policy()), hpa, step, START_LATENCY, 100, since=at, until=at + 200)
    res.add("10 -> 100: Bay, load rise to 100 ready", r.bay_s or -1.0, "s")
    res.add("10 -> 100: HPA model, load rise to 100 ready", r.hpa_s or -1.0, "s")
    if r.ratio is not None:
        res.add("HPA / Bay", r.ratio, "x")
    fast = r.bay_s is not None and r.bay_s < TARGET_S
    seen = f"{r.bay_s} s (the system we follow: 35 s; HPA model: {r.hpa_s} s)"
    res.target(f"Bay reaches 100 within {TARGET_S:g} s of the rise", fast, seen)
    steady = [(0.0, 40 * TARGET)]
    noisy = simulate(BayEngine(_policy()), steady, START_LATENCY, initial=40, until=600.0, noise=0.15, seed=7)
    moves, changes = _direction_changes(noisy)
    res.add("noisy steady load (±15%, 10 min): moves", float(moves), "moves")
    res.add("noisy steady load: direction changes", float(changes), "changes")
    res.target("no change of direction under a noisy steady load", changes == 0, f"{changes} ({moves} moves)")
    gone = [(0.0, 100 * TARGET), (60.0, 1 * TARGET)]
    down = simulate_counts(BayEngine(_policy()), gone, START_LATENCY, initial=100, until=60.0 + 600)
    first = time_to_reach([(p.t, -p.desired) for p in down], -99, since=60.0)
    at_min = time_to_reach([(p.t, -p.desired) for p in down], -10, since=60.0)
    steps, last = [], None
    for p in down:
        if p.desired != last:
            if last is not None:
                steps.append(f"{p.t - 60.0:.0f}s:{p.desired}")
            last = p.desired
    res.add("load gone: first step down after", first if first is not None else -1.0, "s")
    res.add("load gone: at min (10) after", at_min if at_min is not None else -1.0, "s")
    # the window counts from the last high sample, taken one tick before the load went
    held = first is not None and first >= 300.0 - 1.0
    res.target("no scale-down within 300 s of the last high sample", held, f"first {first} s after the drop")
    res.notes.append("scale-down timeline (s after the load went: tasks): " + ", ".join(steps))
    hpa_steps = [f"{t - at:.0f}s:{n}" for t, n in _changes(r.hpa)]
    res.notes.append("HPA model after the rise (s: ready): " + ", ".join(hpa_steps[:8]))
    return res


def _changes(series: list[tuple[float, int]]) -> list[tuple[float, int]]:
    out, last = [], None
    for t, n in series:
        if n != last:
            out.append((t, n))
            last = n
    return out[1:]
