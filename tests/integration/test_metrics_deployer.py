"""The deployer's /metrics as a real process: a running deployment is counted by state with its
progress deadline, and once it has succeeded it is counted by outcome and its deadline is gone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bay.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2

from libs.eventlog import StreamSettings
from libs.eventlog.jetstream import JetStreamEventLog
from libs.grpcutil import channel
from libs.natsconn import connect
from libs.natsserver import free_port
from libs.spec import GroupSpec
from libs.spec_pb import spec_to_pb
from libs.views.live import open_view
from tests import natsauth
from tests.integration.deployer_harness import TargetRunner
from tests.integration.metrics_scrape import Scrape, until_scrape
from tests.integration.registry_harness import RunningRegistry
from tests.integration.test_deployer_process import _serving, _start
from tests.integration.test_deployer_rolling import DEADLINE, Watcher
from tests.poll import poll_until

PROGRESS_DEADLINE = 300.0


async def test_deployments_by_state_deadline_and_outcome(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    runner = await TargetRunner.start(fresh_stream)
    conn = await connect(
        fresh_stream, name="watch", wait_seconds=5, credentials=natsauth.credentials("deployer")
    )
    watch = await open_view(JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "watch", Watcher)
    port, metrics = free_port(), f"127.0.0.1:{free_port()}"
    proc = _start(fresh_stream, registry, tmp_path, port, BAY_METRICS_LISTEN=metrics)
    chan = channel(f"127.0.0.1:{port}")

    async def until(check: Callable[[Scrape], object], what: str) -> Scrape:
        return await until_scrape(metrics, check, what, DEADLINE)

    try:
        await _serving(proc, port, tmp_path)
        page = await until(lambda p: True, "the deployer's page")
        assert page.value("bay_deployments", state="running") == 0
        assert page.value("bay_deployments_total", outcome="succeeded") is None
        md = registry.md()
        v1 = GroupSpec(name="web", cmd="sleep 1000", instances=2)
        await registry.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec_to_pb(v1)), metadata=md)
        await poll_until(lambda: len(watch.state.ready_tasks("web")) == 2, "2 ready tasks of v1", DEADLINE)
        request = deploy_pb2.DeployRequest(
            group="web",
            spec=spec_to_pb(v1.model_copy(update={"cmd": "sleep 1001"})),
            strategy=deploy_pb2.Strategy(
                min_ready_seconds=3, maximum_over_capacity=0.5, progress_deadline_seconds=PROGRESS_DEADLINE
            ),
        )
        asked = time.time()
        reply = await deploy_pb2_grpc.DeployerStub(chan).Deploy(request, metadata=md, timeout=10)
        dep = reply.deployment.id
        page = await until(
            lambda p: p.value("bay_deployment_deadline_timestamp_seconds", group="web", deployment=dep),
            "the running deployment's deadline",
        )
        assert page.value("bay_deployments", state="running") == 1
        due = page.value("bay_deployment_deadline_timestamp_seconds", deployment=dep) or 0
        assert asked + PROGRESS_DEADLINE - 5 <= due <= time.time() + PROGRESS_DEADLINE

        page = await until(
            lambda p: p.value("bay_deployments_total", outcome="succeeded") == 1, "the deployment counted"
        )
        assert page.value("bay_deployments", state="succeeded") == 1
        assert page.value("bay_deployments", state="running") == 0
        assert page.value("bay_deployment_deadline_timestamp_seconds", deployment=dep) is None
        assert page.value("bay_nats_connected", service="deployer") == 1
    finally:
        await chan.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        await runner.stop()
        await watch.stop(snapshot=False)
        await conn.close()
