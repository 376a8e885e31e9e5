"""While a deployment of the group runs, the autoscaler does not scale it (status says which
deployment), however high the load; once the deployment ends, it scales again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from bay.v1 import deploy_pb2, scheduler_pb2

from libs.eventlog import StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.events import subjects
from libs.natsconn import connect
from libs.spec import GroupSpec
from libs.spec_pb import spec_to_pb
from libs.views.live import open_view
from tests.integration.autoscaler.harness import DEADLINE, AutoscalerProcess, Watcher
from tests.integration.autoscaler.test_autoscaler_process import _policy
from tests.integration.deployer_harness import TargetRunner, start_deployer
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import create_group
from tests.poll import poll_until


async def test_no_scaling_while_a_deployment_of_the_group_runs(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    runner = await TargetRunner.start(fresh_stream)
    deployer = await start_deployer(fresh_stream, registry, tmp_path)
    conn = await connect(fresh_stream, name="watch", wait_seconds=5)
    watch = await open_view(JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "watch", Watcher)
    view = watch.state
    autoscaler = AutoscalerProcess(fresh_stream, registry, tmp_path)
    autoscaler.start()
    client = autoscaler.client

    async def publish_usage() -> None:
        while True:
            batch = scheduler_pb2.UsageBatch(cluster="local", group="web")
            for t in view.ready_tasks("web"):
                batch.samples.add(task_id=t.id, timestamp=time.time(), cpu_fraction=1.0, cpus_limit=1.0)
            await conn.client.publish(subjects.usage("local", "web"), batch.SerializeToString())
            await asyncio.sleep(0.2)  # a publisher's period, not a wait for anything

    publisher = None
    try:
        await autoscaler.serving()
        v1 = GroupSpec(name="web", cmd="sleep 1000", instances=2)
        await create_group(registry, name="web", cmd="sleep 1000", instances=2)
        await poll_until(lambda: len(view.ready_tasks("web")) == 2, "2 ready tasks", DEADLINE)
        strategy = deploy_pb2.Strategy(
            kind="canary",
            steps=[deploy_pb2.CanaryStep(set_share=0.5), deploy_pb2.CanaryStep(pause=deploy_pb2.PauseStep())],
        )
        reply = await deployer.stub.Deploy(
            deploy_pb2.DeployRequest(
                group="web", spec=spec_to_pb(v1.model_copy(update={"cmd": "sleep 1001"})), strategy=strategy
            ),
            metadata=registry.md(),
        )
        dep_id = reply.deployment.id
        publisher = asyncio.create_task(publish_usage())
        await client.set_policy(_policy())

        async def held() -> bool:
            s = await client.status("web")
            return s.reason == f"deployment {dep_id} running"

        await poll_until(held, "held for the deployment", DEADLINE)
        assert not view.decided
        await deployer.stub.Promote(deploy_pb2.PromoteRequest(group="web", all=True), metadata=registry.md())
        await poll_until(lambda: len(view.decided) >= 1, "a decision once the deployment ended", DEADLINE)
        d = view.deployments.by_id[dep_id]
        assert d.ended, d.state
    finally:
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
        await client.close()
        autoscaler.stop()
        await deployer.stop()
        await runner.stop()
        await watch.stop(snapshot=False)
        await conn.close()
