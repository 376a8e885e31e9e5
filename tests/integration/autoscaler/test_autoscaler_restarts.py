"""A SIGKILLed autoscaler process, restarted, resumes from the log: killed while a down window holds
a scale-down, it does not scale down before that window's end (computed from the log's window
snapshots), and then in one decision; killed between its AutoscaleDecided and the registry's answer
to the ScaleGroup (the test's registry holds that call), the restart asks again with the same
idempotency key: one decision, one count change, the right count."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bay.v1 import autoscale_pb2

from libs.events import EventMeta, subjects
from services.registry.domain import group as g
from tests.integration.autoscaler.harness import DEADLINE, Platform, at, platform
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group
from tests.poll import poll_until

DOWN_WINDOW = 6.0


class HeldScale:
    """The registry's group commands, with the autoscaler's first ScaleGroup held until released."""

    def __init__(self, registry: RunningRegistry) -> None:
        self.inner = registry.registry.group_command
        self.keys: list[str] = []
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        registry.registry.group_command = self  # type: ignore[method-assign,assignment]

    async def __call__(self, cmd: g.GroupCommand, meta: EventMeta) -> object:
        if isinstance(cmd, g.ScaleGroup) and meta.idempotency_key.startswith("autoscaler-"):
            self.keys.append(meta.idempotency_key)
            if not self.held.is_set():
                self.held.set()
                await self.release.wait()  # the caller may be dead by then (and this cancelled)
        return await self.inner(cmd, meta)


def _policy() -> autoscale_pb2.AutoscalePolicy:
    return autoscale_pb2.AutoscalePolicy(
        group="web",
        min=1,
        max=10,
        metrics=[
            autoscale_pb2.MetricTarget(kind="custom", name="rps", target=100, per_task=False, pushed=True)
        ],
        up=autoscale_pb2.UpBehaviour(window_seconds=1, stable_window_seconds=1),
        down=autoscale_pb2.DownBehaviour(window_seconds=DOWN_WINDOW, cooldown_seconds=0, max_percent=100),
    )


def push_rps(p: Platform, load: dict[str, int]) -> None:
    async def publish() -> None:
        while True:
            await p.conn.client.publish(subjects.metric("web", "rps"), str(load["rps"]).encode())
            await asyncio.sleep(0.2)  # a publisher's period, not a wait for anything

    p.run(publish)


async def test_a_sigkilled_autoscaler_neither_scales_down_early_nor_decides_twice(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    async with platform(registry, fresh_stream, tmp_path) as p:
        a, view = p.autoscaler, p.view
        await create_group(registry, name="web", cmd="sleep 1000", instances=2)
        load = {"rps": 600}
        push_rps(p, load)
        await a.client.set_policy(_policy())
        await poll_until(lambda: view.instances("web") == 6, "600 rps: 6 tasks", DEADLINE)
        assert view.steps("web") == [(2, 6)]

        # the load drops: the down window holds 6; killed once the log has the window open
        load["rps"] = 200
        await poll_until(lambda: _window_open(p), "a window snapshot holding 6 over 2", DEADLINE)

        async def stabilising() -> bool:
            """Past the scale-up's panic, which lasts while its new tasks are not all ready yet."""
            return (await a.status("web")).reason.startswith("stabilising until")

        await poll_until(stabilising, "the down window holding 6 (panic over)", DEADLINE)
        a.kill()
        high = view.last_high("web", 6)
        assert high is not None
        await a.restart()
        await poll_until(lambda: view.instances("web") == 2, "down to 2 after the window", DEADLINE)
        assert view.steps("web") == [(2, 6), (6, 2)]
        down = view.decisions("web")[1]
        assert at(down) >= high + DOWN_WINDOW, (at(down), high)  # not before the window's end

        # killed between the decision and the registry's answer: asked again, answered once
        held = HeldScale(registry)
        load["rps"] = 600
        await poll_until(held.held.wait, "the autoscaler's ScaleGroup, held", DEADLINE)
        assert view.steps("web") == [(2, 6), (6, 2), (2, 6)] and view.instances("web") == 2
        a.kill()
        restarted = time.time()
        await a.restart()
        # the restart asks again (the held call is released only then: whether gRPC's
        # cancellation or the release reaches it first, the registry sees the key twice)
        await poll_until(lambda: len(held.keys) == 2, "the restart's ScaleGroup", DEADLINE)
        held.release.set()
        await poll_until(lambda: view.instances("web") == 6, "6 again", DEADLINE)
        await poll_until(lambda: a.evaluated_after("web", restarted + 2), "evaluations after it", DEADLINE)
        assert held.keys[0] == held.keys[1], held.keys  # the same command
        assert view.steps("web") == [(2, 6), (6, 2), (2, 6)]  # no extra decision
        assert view.changes["web"] == [(2, 6), (6, 2), (2, 6)]  # one count change per decision


def _window_open(p: Platform) -> bool:
    """The log's last window snapshot of web holds a 6 and the 2 that came after it."""
    snapshots = [w for group, w in p.view.windows if group == "web"]
    values = [e.value for e in snapshots[-1].state.highs] if snapshots else []
    return bool(values) and values[0] >= 6 and values[-1] == 2
