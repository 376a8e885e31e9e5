"""What the autoscaling benchmarks make of a run: the decisions, where the time to 100 went, and the
recorded metric trace fed to the HPA model and to Bay's own domain (services/autoscaler/domain/sim).

The trace is what the policy saw once a second (the autoscaler's Observer over the same samples):
the sum of the ready tasks' cpu utilisation, in the sim's unit (the group's demand; each simulated
ready task shows demand / ready). It carries the metric pipeline's lag (publish interval, averaging
window), which HPA would have on top of its own (metrics-server's is left out of the model).
HPA's 15 s sync has a phase against the load's rise that nothing fixes: every phase (0..14 s) is run,
and the best one for HPA and the mean are reported.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from dataclasses import dataclass

from bay.v1 import autoscale_pb2

from bench.autoscale_stack import Counts, Recorder, Seen
from bench.report import Result
from services.autoscaler.adapters.wire import policy_from_pb
from services.autoscaler.domain.hpa import HpaConfig, HpaModel
from services.autoscaler.domain.sim import BayEngine, Trace, simulate, time_to_reach

HPA_PHASES = 15
#: wall clock (the decisions' `at`) minus the monotonic clock the benchmark measures with
WALL_MINUS_MONO = time.time() - time.monotonic()


@dataclass(frozen=True)
class Step:
    t: float  # seconds after the reference (the load's rise or its removal)
    frm: int
    to: int
    rule: str
    panic: bool
    need: float | None  # the load in tasks the decision saw

    def render(self) -> str:
        need = f", need {self.need:.0f}" if self.need is not None else ""
        return f"{self.t:.1f}s {self.frm}->{self.to} ({self.rule}{need})"


def steps(rec: Recorder, since: float, until: float = math.inf) -> list[Step]:
    """The decisions made in [since, until) (monotonic), timed from ``since`` by their own ``at``."""
    out = []
    for _, d in rec.view.decided:
        at = d.at.ToNanoseconds() / 1e9 - WALL_MINUS_MONO
        if since <= at < until:
            need = d.need if d.HasField("need") else None
            out.append(Step(at - since, getattr(d, "from"), d.to, d.rule, d.panic, need))
    return out


def trace(seen: list[Seen], since: float, target: float) -> list[tuple[float, float]]:
    """(seconds after ``since``, the group's demand) for each second the policy had data."""
    return [(s.t - since, s.need * target) for s in seen if s.need is not None]


def hpa_times(tr: Trace, policy: autoscale_pb2.AutoscalePolicy, latency: float, until: float) -> list[float]:
    """The HPA model's seconds from 0 to ``policy.max`` ready on ``tr``, for each sync phase (inf: not
    within ``until``)."""
    target = policy.metrics[0].target
    tol = policy.tolerance if policy.HasField("tolerance") else 0.1
    out = []
    for phase in range(HPA_PHASES):
        shifted = [(tr[0][0] - phase, tr[0][1]), *tr]
        hpa = HpaModel(HpaConfig(min=policy.min, max=policy.max, target=target, tolerance=tol))
        series = simulate(hpa, shifted, latency, initial=policy.min, until=until)
        reached = time_to_reach(series, policy.max, since=0.0)
        out.append(math.inf if reached is None else reached)
    return out


def bay_sim_time(tr: Trace, policy: autoscale_pb2.AutoscalePolicy, latency: float, until: float) -> float:
    series = simulate(BayEngine(policy_from_pb(policy)), tr, latency, initial=policy.min, until=until)
    reached = time_to_reach(series, policy.max, since=0.0)
    return math.inf if reached is None else reached


def side_by_side(
    res: Result,
    prefix: str,
    measured: float,
    tr: Trace,
    policy: autoscale_pb2.AutoscalePolicy,
    latency: float,
    until: float,
) -> float:
    """HPA's and Bay's domain's times to max on the recorded trace beside Bay's measured time; the
    ratio HPA (best phase) / Bay measured, which it returns."""
    n = policy.max
    hpa = hpa_times(tr, policy, latency, until)
    best = min(hpa)
    finite = [h for h in hpa if math.isfinite(h)]
    res.add(f"{prefix}HPA model on the recorded trace: rise to {n} ready (best sync phase)", best, "s")
    if len(finite) == len(hpa):
        res.add(f"{prefix}HPA model: mean over its {HPA_PHASES} sync phases", statistics.fmean(hpa), "s")
    else:
        res.notes.append(
            f"{prefix}HPA model: {len(hpa) - len(finite)} of {HPA_PHASES} phases not at {n} "
            f"within the {until:.0f} s of trace"
        )
    res.add(
        f"{prefix}Bay's domain on the recorded trace (sim)", bay_sim_time(tr, policy, latency, until), "s"
    )
    ratio = best / measured if measured > 0 and math.isfinite(best) else math.inf
    res.add(f"{prefix}HPA model (best phase) / Bay measured", round(ratio, 2), "x")
    return ratio


def first(counts: list[Counts], since: float, ok: object) -> float | None:
    """Seconds after ``since`` of the first record that satisfies ``ok``."""
    c = next((c for c in counts if c.t >= since and ok(c)), None)  # type: ignore[operator]
    return None if c is None else c.t - since


def ratios(seen: list[Seen], since: float, target: float, span: tuple[float, float]) -> str:
    """The value the policy saw, as a fraction of the target, each second of ``span`` (after since)."""
    out = []
    for s in seen:
        t = s.t - since
        if span[0] <= t <= span[1]:
            v = "none" if s.value is None else f"{s.value / target:.2f}"
            out.append(f"{t:.0f}s:{v}")
    return ", ".join(out)


def batch_gaps(rec: Recorder) -> float | None:
    """The median time between two usage batches of the group (the publish interval seen)."""
    times = [t for t, _ in rec.batches]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return statistics.median(gaps) if gaps else None


def longest_gap(rec: Recorder, since: float, until: float) -> float | None:
    """The longest time without a usage batch of the group within [since, until]."""
    times = [since, *(t for t, _ in rec.batches if since < t < until), until]
    return max(b - a for a, b in itertools.pairwise(times)) if len(times) > 2 else None


def where_it_went(marks: list[tuple[str, float | None]]) -> str:
    """'1.3 s to A, then 3.2 s to B, ...' from the marks' times after the rise (missing ones skipped)."""
    out, last = [], 0.0
    for label, at in marks:
        if at is None:
            continue
        out.append(f"{at - last:.2f} s to {label}")
        last = at
    return ", then ".join(out)
