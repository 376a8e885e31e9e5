"""A benchmark's result: parameters, figures with units, targets met or missed; printed and as JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str

    def render(self) -> str:
        if self.unit in ("events/s", "calls/s", "requests/s", "events"):
            return f"{self.value:,.0f} {self.unit}"
        if self.unit == "ms":
            return f"{self.value:.3f} ms"
        if self.unit == "s":
            return f"{self.value:.3f} s"
        if self.unit.startswith("us"):
            return f"{self.value:.1f} {self.unit}"
        if self.unit == "bytes":
            return f"{self.value:,.0f} bytes"
        return f"{self.value:g} {self.unit}"


@dataclass(frozen=True)
class Target:
    """A target is informational: a miss is printed, never raised."""

    description: str
    met: bool
    measured: str


@dataclass
class Result:
    name: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def add(self, name: str, value: float, unit: str) -> float:
        self.figures.append(Figure(name, value, unit))
        return value

    def target(self, description: str, met: bool, measured: str) -> None:
        self.targets.append(Target(description, met, measured))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["figures"] = {f.name: {"value": f.value, "unit": f.unit} for f in self.figures}
        return out

    def render(self) -> str:
        lines = [f"== {self.name}: {self.title} =="]
        if self.params:
            lines.append("parameters: " + ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items()))
        width = max((len(f.name) for f in self.figures), default=0)
        lines += [f"  {f.name:<{width}}  {f.render()}" for f in self.figures]
        lines += [
            f"target: {t.description}: {'PASS' if t.met else 'MISS'} (measured {t.measured})"
            for t in self.targets
        ]
        lines += [f"note: {n}" for n in self.notes]
        if self.error:
            lines.append(f"ERROR: {self.error}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def latency_figures(result: Result, prefix: str, seconds: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of a list of latencies (seconds), added to the result in ms."""
    ordered = sorted(seconds)
    n = len(ordered)

    def pct(p: float) -> float:
        return ordered[min(n - 1, max(0, round(p / 100 * n) - 1))] * 1000

    out = {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": ordered[-1] * 1000}
    out["mean"] = statistics.fmean(ordered) * 1000
    for k, v in out.items():
        result.add(f"{prefix} {k}", v, "ms")
    return out
