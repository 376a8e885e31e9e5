"""``python -m services.autoscaler`` as a real process (its own NATS user and operator token), with
the real registry and the real scheduler of ``local``: synthetic usage on ``bay.usage.local.web``
scales the group to what the load needs in one decision; a custom metric pushed on NATS scales it
again; a SIGKILLed autoscaler resumes without an extra decision; a removed policy stops scaling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bay.v1 import autoscale_pb2, scheduler_pb2

from libs.clients import AutoscalerClient, Caller, ServiceClient
from libs.errors import NotFound, ValidationFailed
from libs.eventlog import StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import model as m
from libs.events import subjects
from libs.natsconn import connect
from libs.natsserver import free_port
from libs.views.live import open_view
from libs.views.platform import PlatformView
from tests import natsauth
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, scale
from tests.poll import poll_until

DEADLINE = 30.0


class Watcher(PlatformView):
    def __init__(self) -> None:
        super().__init__(cluster=None)
        self.decided: list[m.AutoscaleDecided] = []

    def on_other(self, ev: object) -> None:
        data = ev.data  # type: ignore[attr-defined]
        if isinstance(data, m.AutoscaleDecided):
            self.decided.append(data)


def _start(nats_url: str, registry: RunningRegistry, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
    env.update(
        {
            "BAY_NATS_URL": nats_url,
            "BAY_DATA_DIR": str(data_dir),
            "BAY_TOKENS_FILE": str(data_dir / "tokens.json"),
            "BAY_REGISTRY_ADDR": f"127.0.0.1:{registry.port}",
            "BAY_AUTOSCALER_LISTEN": f"127.0.0.1:{port}",
            "BAY_AUTOSCALER_USAGE_SECONDS": "1",
            "BAY_AUTOSCALER_SNAPSHOT_SECONDS": "1",
            **natsauth.env("autoscaler"),
        }
    )
    out = (data_dir / "autoscaler.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "services.autoscaler"], env=env, stdout=out, stderr=out)
    out.close()
    return proc


async def _serving(proc: subprocess.Popen[bytes], port: int, data_dir: Path) -> None:
    async def up() -> bool:
        assert proc.poll() is None, (data_dir / "autoscaler.log").read_text()[-3000:]
        async with ServiceClient(f"127.0.0.1:{port}", timeout=1.0) as health:
            try:
                await asyncio.wait_for(health.until_serving(poll_seconds=0.05), 0.5)
                return True
            except TimeoutError:
                return False

    await poll_until(up, "the autoscaler serving", DEADLINE)


def _policy(target: float = 0.5) -> autoscale_pb2.AutoscalePolicy:
    return autoscale_pb2.AutoscalePolicy(
        group="web",
        min=1,
        max=10,
        metrics=[
            autoscale_pb2.MetricTarget(kind="cpu", target=target),
            autoscale_pb2.MetricTarget(kind="custom", name="rps", target=100, per_task=False, pushed=True),
        ],
        up=autoscale_pb2.UpBehaviour(window_seconds=1, stable_window_seconds=1),
    )


async def test_the_autoscaler_scales_on_usage_and_pushed_metrics_and_resumes_after_sigkill(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    sched = SchedulerProcess(
        registry, fresh_stream, tmp_path, extra_env={"BAY_USAGE_INTERVAL_SECONDS": "3600"}
    )
    await sched.start()
    conn = await connect(fresh_stream, name="watch", wait_seconds=5)  # the set-up: may publish samples
    watch = await open_view(JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "watch", Watcher)
    view = watch.state
    port = free_port()
    proc = _start(fresh_stream, registry, tmp_path, port)
    load = {"cpu": 1.0}

    def instances() -> int:
        g = view.live_group("web")
        return g.instances if g is not None else -1

    async def publish_usage() -> None:
        while True:
            ready = view.ready_tasks("web")
            batch = scheduler_pb2.UsageBatch(cluster="local", group="web")
            for t in ready:
                batch.samples.add(
                    task_id=t.id, timestamp=time.time(), cpu_fraction=load["cpu"], cpus_limit=1.0
                )
            await conn.client.publish(subjects.usage("local", "web"), batch.SerializeToString())
            await asyncio.sleep(0.2)  # a publisher's period, not a wait for anything

    publisher: asyncio.Task[None] | None = None
    client = AutoscalerClient(f"127.0.0.1:{port}", timeout=5.0, caller=Caller.bearer(registry.token))
    try:
        await _serving(proc, port, tmp_path)
        assert (tmp_path / "autoscaler.token").exists()
        await create_group(registry, name="web", cmd="sleep 1000", instances=2)
        await poll_until(lambda: len(view.ready_tasks("web")) == 2, "2 ready tasks", DEADLINE)

        bad = _policy(target=0)
        bad.max = 0
        with pytest.raises(ValidationFailed) as invalid:
            await client.set_policy(bad)
        fields = {v.field for v in invalid.value.violations}
        assert {"metrics.0.target", "max"} <= fields, fields

        publisher = asyncio.create_task(publish_usage())
        await client.set_policy(_policy())
        # 2 tasks at 100% of their cpu, target 50%: 4 tasks, in one decision
        await poll_until(lambda: len(view.decided) >= 1, "a decision", DEADLINE)
        first = view.decided[0].decision
        assert (getattr(first, "from"), first.to) == (2, 4), first
        await poll_until(lambda: instances() == 4, "scaled to 4", DEADLINE)
        load["cpu"] = 0.5  # now at target
        await poll_until(lambda: len(view.ready_tasks("web")) == 4, "4 ready tasks", DEADLINE)

        # a custom metric, a group total pushed on NATS: 600 rps at 100 per task -> 6
        async def push_rps() -> bool:
            await conn.client.publish(subjects.metric("web", "rps"), b"600")
            return instances() == 6

        await poll_until(push_rps, "scaled to 6 on rps", DEADLINE)
        assert [(getattr(d.decision, "from"), d.decision.to) for d in view.decided] == [(2, 4), (4, 6)]
        status = await client.status("web")
        assert status.policy.group == "web" and len(status.decisions) == 2

        # SIGKILL, restart: no extra decision once it evaluates again
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        restarted = time.time()
        proc = _start(fresh_stream, registry, tmp_path, port)
        await _serving(proc, port, tmp_path)

        async def evaluated_again() -> bool:
            await conn.client.publish(subjects.metric("web", "rps"), b"600")
            s = await client.status("web")
            return s.HasField("latest") and s.latest.at.ToNanoseconds() / 1e9 > restarted + 2

        await poll_until(evaluated_again, "evaluations after the restart", DEADLINE)
        assert len(view.decided) == 2
        assert instances() == 6

        # removed: the group stays where it is whatever the load
        assert await client.remove_policy("web")
        with pytest.raises(NotFound):
            await client.status("web")
        load["cpu"] = 1.0
        removed = time.time()

        async def a_while_later() -> bool:  # absence of a decision: a window of ticks, then look
            await conn.client.publish(subjects.metric("web", "rps"), b"1000")
            return time.time() > removed + 3

        await poll_until(a_while_later, "ticks after the removal", DEADLINE)
        assert len(view.decided) == 2 and instances() == 6
    finally:
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
        await client.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        await sched.stop()
        await watch.stop(snapshot=False)
        await conn.close()


async def test_a_manual_scale_outside_the_bounds_is_brought_back_in_one_decision(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    sched = SchedulerProcess(
        registry, fresh_stream, tmp_path, extra_env={"BAY_USAGE_INTERVAL_SECONDS": "3600"}
    )
    await sched.start()
    conn = await connect(fresh_stream, name="watch", wait_seconds=5)
    watch = await open_view(JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "watch", Watcher)
    view = watch.state
    port = free_port()
    proc = _start(fresh_stream, registry, tmp_path, port)
    client = AutoscalerClient(f"127.0.0.1:{port}", timeout=5.0, caller=Caller.bearer(registry.token))

    def instances() -> int:
        g = view.live_group("web")
        return g.instances if g is not None else -1

    try:
        await _serving(proc, port, tmp_path)
        await create_group(registry, name="web", cmd="sleep 1000", instances=2)
        policy = _policy()
        policy.min, policy.max = 2, 3
        await client.set_policy(policy)
        status = await poll_until(
            lambda: _evaluated(client), "a first evaluation (no data: it holds)", DEADLINE
        )
        assert "no data" in status.reason and not view.decided
        await scale(registry, "web", 6)  # a person's `bay scale`, above the policy's max
        await poll_until(lambda: instances() == 3, "brought back to max 3", DEADLINE)
        assert [(getattr(d.decision, "from"), d.decision.to, d.decision.rule) for d in view.decided] == [
            (6, 3, "at max")
        ]
    finally:
        await client.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        await sched.stop()
        await watch.stop(snapshot=False)
        await conn.close()


async def _evaluated(client: AutoscalerClient) -> autoscale_pb2.AutoscaleStatus | None:
    s = await client.status("web")
    return s if s.HasField("latest") else None
