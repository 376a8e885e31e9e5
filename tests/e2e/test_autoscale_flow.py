"""Autoscaling as a group's owner sees it, on the whole platform as ``make run`` starts it.

A group of the CPU-burning task (tests/tasks/burn.py, health-checked over HTTP) gets a cpu policy
through ``bay autoscale set``; a client load (tests/dnsload.py) finds its tasks through Bay DNS and
has each request burn a few milliseconds of CPU. Under a light load the group stays at its min; a
moderate load steps it up; an extreme one takes it to its max and never above ("at max"); once the
load is gone the count holds for the down window after the last high recommendation ("stabilising
until ..."), then comes down to min in steps of at most a quarter.

CPU fractions on a shared 2-core machine are noisy, so the levels are far apart: the light load
needs a fraction of one task, the moderate one about four, the extreme one well over ten, against
a max of six. What the autoscaler recommended at each evaluation is read from its status, sampled a
few times a second (holds are not events); the count changes are its ``AutoscaleDecided`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.dnsload import DnsLoad
from tests.e2e.harness import BayUp
from tests.poll import poll_until
from tests.tasks import BURN

pytestmark = pytest.mark.timeout(300)

GROUP = "burner"
MIN, MAX = 2, 6
TARGET = 0.25  # of the 0.05 cores each task asks for: 0.0125 cores per task
DOWN_WINDOW = 15.0
DOWN_COOLDOWN = 2.0
MAX_PERCENT = 25.0  # the default
SPEC = (
    f"name: {GROUP}\ncmd: {json.dumps(BURN)}\ninstances: {MIN}\nports: [{{name: http}}]\n"
    "resources: {cpus: 0.05, mem: 64}\n"
    "health_check: {protocol: http, path: /health, port_name: http, grace_period_seconds: 30,"
    " interval_seconds: 2, timeout_seconds: 2}\n"
)
# no flag for it: panic (which forbids any scale-down) lasts 6 s after its condition, not 60, so the
# down window is what holds the count once the load is gone
POLICY_FILE = "up: {stable_window_seconds: 6}\n"


@dataclass(frozen=True)
class Level:
    """A load: ``workers`` clients, each asking for ``ms`` of CPU, then pausing ``interval`` s."""

    ms: float
    workers: int
    interval: float


# Many workers with long pauses: a loaded machine slows each request, which changes the pace less
LIGHT = Level(ms=1, workers=1, interval=0.5)  # ~0.004 cores: a third of one task's target
MODERATE = Level(ms=5, workers=4, interval=0.5)  # < 0.06 cores: about 4 tasks (3 on a loaded machine)
EXTREME = Level(ms=15, workers=4, interval=0.2)  # ~0.3 cores: about 20 tasks (over 10 when loaded)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Seen:
    """One evaluation of the group, as its status showed it."""

    at: float  # epoch seconds, the autoscaler's clock (as the decisions' times)
    count: int  # the count it evaluated (the decision's from)
    recommendation: int | None
    cpu: float | None
    reason: str


@dataclass
class StatusWatch:
    """Samples ``GET /v1/groups/{group}/autoscale/status`` every ``every`` s (a sampler's pace, as a
    load generator's): the newest status, and every distinct evaluation seen."""

    http: httpx.AsyncClient
    group: str
    every: float = 0.25
    last: dict[str, Any] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                resp = await self.http.get(f"/v1/groups/{self.group}/autoscale/status")
                if resp.status_code == 200:
                    self._take(resp.json())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)

    def _take(self, status: dict[str, Any]) -> None:
        self.last = status
        latest = status.get("latest")
        if latest and latest.get("at") and (not self.seen or epoch(latest["at"]) > self.seen[-1].at):
            cpu = next((v["value"] for v in latest["metrics"] if v["name"] == "cpu"), None)
            self.seen.append(
                Seen(epoch(latest["at"]), latest["from"], latest["recommendation"], cpu, latest["reason"])
            )
        self._changed.set()

    def decisions(self) -> list[dict[str, Any]]:
        """The count changes the status lists, oldest first."""
        return list(reversed(self.last.get("decisions") or []))

    async def until(
        self, check: Callable[[dict[str, Any]], Any], what: str, timeout: float
    ) -> dict[str, Any]:
        """The first status for which ``check`` is true; fails naming ``what`` and the last status."""

        async def scan() -> dict[str, Any]:
            while True:
                if self.last and check(self.last):
                    return self.last
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            recent = "\n".join(map(str, self.seen[-15:]))
            raise AssertionError(
                f"not within {timeout}s: {what}; status now {json.dumps(self.last)[:1500]}\n{recent}"
            ) from None


@contextlib.asynccontextmanager
async def background(run: Callable[[asyncio.Event], Any]) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def load(bay: BayUp, level: Level) -> AsyncIterator[DnsLoad]:
    client = DnsLoad(
        ("127.0.0.1", bay.dns_port),
        f"_http._tcp.{GROUP}.local.bay.internal.",
        path=f"/?ms={level.ms:g}",
        workers=level.workers,
        interval=level.interval,
    )
    async with background(client.run):
        yield client


async def cli_status(bay: BayUp) -> str:
    code, out, err = await bay.cli("autoscale", "status", GROUP)
    assert code == 0, err
    return out


def answered(client: DnsLoad) -> int:
    return len(client.answers) - len(client.failures)


def until_epoch(reason: str, near: float) -> float:
    """The HH:MM:SS (UTC) of a reason ``... until HH:MM:SS`` as epoch seconds, the day being the one
    of ``near`` (an evaluation's time, within hours of it)."""
    m = re.search(r"until (\d\d):(\d\d):(\d\d)", reason)
    assert m, reason
    day = near - near % 86400
    t = day + int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
    return t + 86400 if t < near - 43200 else t


async def test_a_cpu_policy_follows_the_load_up_to_max_and_back_down_in_steps(bay: BayUp) -> None:
    spec, policy = bay.cwd / f"{GROUP}.yaml", bay.cwd / f"{GROUP}-policy.yaml"
    spec.write_text(SPEC)
    policy.write_text(POLICY_FILE)
    try:
        code, _, err = await bay.cli("apply", "-f", str(spec))
        assert code == 0, err
        code, _, err = await bay.cli("scale", GROUP, str(MIN), "--wait", "--timeout", "40", timeout=50)
        assert code == 0, err
        args = ["--min", str(MIN), "--max", str(MAX), "--cpu", str(TARGET)]
        args += ["--down-window", f"{DOWN_WINDOW:g}", "--down-cooldown", f"{DOWN_COOLDOWN:g}"]
        code, out, err = await bay.cli("autoscale", "set", GROUP, "-f", str(policy), *args)
        assert code == 0, err
        assert out.strip() == f"autoscaling {GROUP}: {MIN}..{MAX} instances on cpu {TARGET:g}"

        async with bay.http() as http:
            watch = StatusWatch(http, GROUP)
            took: list[str] = []
            try:
                async with background(watch.run):
                    for phase in (
                        light_load_stays_at_min,
                        moderate_load_steps_up,
                        extreme_load_stops_at_max,
                        without_load_holds_then_steps_down,
                    ):
                        began = time.monotonic()
                        await phase(bay, watch)
                        took.append(f"{phase.__name__} {time.monotonic() - began:.1f} s")
                await decided_events_agree(http, watch)
            finally:
                print(*watch.seen, *watch.decisions(), *took, sep="\n")  # the timeline, shown on a failure
    finally:
        await bay.cli("autoscale", "off", GROUP)
        await bay.cli("delete", GROUP)


async def light_load_stays_at_min(bay: BayUp, watch: StatusWatch) -> None:
    async with load(bay, LIGHT) as client:
        first = await watch.until(
            lambda s: s["ready"] == MIN and s["latest"] and s["latest"]["metrics"][0]["value"] is not None,
            "cpu samples of the ready tasks",
            30,
        )
        since = epoch(first["latest"]["at"])
        await watch.until(lambda s: epoch(s["latest"]["at"]) >= since + 5, "5 s of evaluations", 20)
        assert answered(client) > 0, client.failures[:3]
    held = [s for s in watch.seen if s.at >= since]
    assert held and all(s.count == MIN for s in held), held
    # (a moment without samples, e.g. a health check slow on a loaded machine, holds too)
    sampled = [s for s in held if s.recommendation is not None]
    # below min, min is what holds it; at min exactly (a loaded machine makes the light load cost
    # more), nothing is asked for at all
    assert sampled and all(
        ((s.recommendation or 0) < MIN and s.reason == "at min")
        or (s.recommendation == MIN and s.reason in ("steady", "within tolerance"))
        for s in sampled
    ), held
    assert any(s.reason == "at min" for s in sampled), held
    assert watch.decisions() == []
    assert "now: at min" in await cli_status(bay)


async def moderate_load_steps_up(bay: BayUp, watch: StatusWatch) -> None:
    async with load(bay, MODERATE) as client:
        await watch.until(lambda s: s["current"] > MIN, f"a scale-up from {MIN}", 40)
        first = watch.decisions()[0]
        assert first["from"] == MIN and MIN < first["to"] < MAX, first  # a step, not a jump to max
        assert first["rule"] in ("proportional cpu", "panic") or first["rule"].startswith("stabilised")
        await watch.until(lambda s: s["ready"] >= first["to"], f"{first['to']} ready tasks", 40)
        assert answered(client) > 0, client.failures[:3]
    text = await cli_status(bay)
    assert re.search(rf"{MIN}→{first['to']}\s+{re.escape(first['rule'])}", text), text


async def extreme_load_stops_at_max(bay: BayUp, watch: StatusWatch) -> None:
    async with load(bay, EXTREME) as client:
        await watch.until(lambda s: s["current"] == MAX and s["reason"] == "at max", f"at max ({MAX})", 40)
        # and held there while the load asks for more
        asked = await watch.until(
            lambda s: (s["latest"]["recommendation"] or 0) > MAX and s["reason"] == "at max",
            "a recommendation above max, held",
            20,
        )
        assert asked["current"] == MAX
        assert "now: at max" in await cli_status(bay)
        assert answered(client) > 0, client.failures[:3]
    assert max(d["to"] for d in watch.decisions()) == MAX, watch.decisions()


async def without_load_holds_then_steps_down(bay: BayUp, watch: StatusWatch) -> None:
    gone = watch.seen[-1].at  # the load stopped after this evaluation
    # while the down window is open, the status says so (after a few seconds of panic)
    text = ""
    for _ in range(40):
        text = await cli_status(bay)
        if "now: stabilising until" in text:
            break
        assert watch.last["current"] == MAX, f"scaled down before saying it stabilises:\n{text}"
    assert "now: stabilising until" in text, text
    assert re.search(rf"^{GROUP}: {MAX} instances", text, re.M), text

    await watch.until(lambda s: s["current"] == MIN and s["ready"] == MIN, f"back at min ({MIN})", 90)
    downs = [d for d in watch.decisions() if d["to"] < d["from"] and epoch(d["at"]) > gone]
    assert len(downs) >= 2, downs  # several steps
    assert (downs[0]["from"], downs[-1]["to"]) == (MAX, MIN), downs
    for one, then in itertools.pairwise(downs):
        assert then["from"] == one["to"], downs
        assert epoch(then["at"]) - epoch(one["at"]) >= DOWN_COOLDOWN - 0.01, downs
    for d in downs:
        assert d["from"] - d["to"] <= max(1, math.floor(d["from"] * MAX_PERCENT / 100)), d

    # no scale-down before the down window passed since the last recommendation of MAX or more
    first_down = epoch(downs[0]["at"])
    before = [s for s in watch.seen if s.count == MAX and gone <= s.at < first_down]
    highs = [s.at for s in before if (s.recommendation or 0) >= MAX]
    assert highs, "no high recommendation seen once the load was gone"
    assert first_down >= highs[-1] + DOWN_WINDOW, (first_down - highs[-1], downs[0])
    stabilising = [s for s in before if s.reason.startswith("stabilising until ")]
    assert stabilising, [s.reason for s in before]
    # what the status said is true: its until is rounded up to the second, never early
    assert first_down > until_epoch(stabilising[-1].reason, first_down) - 1, (stabilising[-1], downs[0])


async def decided_events_agree(http: httpx.AsyncClient, watch: StatusWatch) -> None:
    """Every count change the status lists is an AutoscaleDecided event (the audit copy of the log,
    which may lag a moment), in order; none goes above max."""
    expected = [(d["from"], d["to"], d["rule"]) for d in watch.decisions()]
    params = {"aggregate_type": "autoscale", "aggregate_id": GROUP, "type": "AutoscaleDecided"}

    async def decided() -> list[tuple[int, int, str]] | None:
        resp = await http.get("/v1/events", params=params)
        assert resp.status_code == 200, resp.text
        found = [e["data"]["decision"] for e in resp.json()["events"]]
        got = [(d["from"], d["to"], d["rule"]) for d in found]
        return got if len(got) >= len(expected) else None

    got = await poll_until(decided, f"{len(expected)} AutoscaleDecided events", 15)
    assert got == expected
    assert max(to for _, to, _ in got) == MAX
