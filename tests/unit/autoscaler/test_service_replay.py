"""The autoscaler's loop over an in-memory log: a decision that changes the count is appended and
asked of the registry once; a restart (a new projection of the same log) resumes the windows as they
were: the same next decision, no jump and no flap."""

from __future__ import annotations

from bay.v1 import autoscale_pb2

from libs.eventlog.memory import MemoryEventLog
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.samples.pushed import Pushed, PushedMetrics
from libs.samples.usage import UsageWindow
from libs.spec import GroupSpec
from services.autoscaler.adapters.observe import Observer
from services.autoscaler.bootstrap import bootstrap
from services.autoscaler.ports import ScalePort


class Registry(ScalePort):
    """Appends GroupScaled as the registry would; remembers keys (a repeat is answered once)."""

    def __init__(self, log: MemoryEventLog) -> None:
        self.log = log
        self.calls: list[tuple[int, str]] = []
        self.seen: dict[str, int] = {}
        self.count = 2

    async def scale(self, group: str, instances: int, *, reason: str, key: str) -> int:
        self.calls.append((instances, key))
        if key in self.seen:
            return self.seen[key]
        seq = await append_group(self.log, m.GroupScaled(instances, self.count, reason))
        self.count = instances
        self.seen[key] = seq
        return seq


_versions: dict[str, int] = {}


async def append_group(log: MemoryEventLog, event: m.EventData) -> int:
    version = _versions.get("g", 0) + 1
    _versions["g"] = version
    env = make_envelope(
        to_pb(event), aggregate_type=subjects.GROUP, aggregate_id="web", aggregate_version=version,
        meta=EventMeta.command("t"), now=1.0,
    )  # fmt: skip
    res = await log.append(subjects.group("web"), env)
    return res.sequence


def _policy() -> autoscale_pb2.AutoscalePolicy:
    return autoscale_pb2.AutoscalePolicy(
        group="web",
        min=1,
        max=20,
        metrics=[autoscale_pb2.MetricTarget(kind="custom", name="rps", target=100, per_task=False)],
        up=autoscale_pb2.UpBehaviour(window_seconds=1, stable_window_seconds=1),
    )


async def test_a_restart_resumes_the_windows_without_an_extra_decision() -> None:
    _versions.clear()
    log = MemoryEventLog()
    await append_group(log, m.GroupCreated(GroupSpec(name="web", cmd="sleep 1", instances=2), 1))
    registry = Registry(log)
    clock = [1_700_000_000.0]
    pushed = PushedMetrics(clock=lambda: clock[0])
    observer = Observer(UsageWindow(clock=lambda: clock[0]), pushed)
    first = await bootstrap(log, registry, observer, clock=lambda: clock[0], snapshot_seconds=5)
    await first.set_policy(_policy(), EventMeta.command("ops"))

    def tick_load(value: float) -> None:
        clock[0] += 1
        pushed.add("web", "rps", Pushed(value))

    tick_load(600)
    await first.tick("web")
    assert registry.calls == [(6, registry.calls[0][1])]  # 600 at 100 per task: 6, in one decision
    # the load drops: the down window (300 s) holds the count; snapshots record the windows
    for _ in range(20):
        tick_load(200)
        await first.tick("web")
    assert len(registry.calls) == 1
    held = first.view.scaled["web"].state
    await first.projection.stop(snapshot=False)

    second = await bootstrap(log, registry, observer, clock=lambda: clock[0], snapshot_seconds=5)
    resumed = second.view.scaled["web"].state
    # the window's highest (what a scale-down waits for) and the cooldowns are as they were; hold
    # recommendations after the last snapshot (here < 5 s of them) are not in the log
    assert resumed.highs[0] == held.highs[0] and resumed.last_up == held.last_up
    assert resumed.highs[-1][1] == held.highs[-1][1] and held.highs[-1][0] - resumed.highs[-1][0] < 5
    for _ in range(5):
        tick_load(200)
        await second.tick("web")
    assert len(registry.calls) == 1
    assert second.now["web"].latest is not None and not second.now["web"].latest.changed
    await second.projection.stop(snapshot=False)
