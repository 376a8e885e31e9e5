"""``python -m services.deployer`` as a real process: it serves bay.v1.Deployer with its own NATS user
and its own operator token for the registry, and a deployer SIGKILLed in the middle of a rolling
deploy finishes it after its restart, with no task doubled or lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from bay.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2

from libs.clients import ServiceClient
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
from tests.integration.registry_harness import RunningRegistry
from tests.integration.test_deployer_rolling import DEADLINE, Watcher
from tests.poll import poll_until


def _start(nats_url: str, registry: RunningRegistry, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
    env.update(
        {
            "BAY_NATS_URL": nats_url,
            "BAY_METRICS_LISTEN": "",
            "BAY_DATA_DIR": str(data_dir),
            "BAY_TOKENS_FILE": str(data_dir / "tokens.json"),
            "BAY_REGISTRY_ADDR": f"127.0.0.1:{registry.port}",
            "BAY_DEPLOYER_LISTEN": f"127.0.0.1:{port}",
            **natsauth.env("deployer"),
        }
    )
    out = (data_dir / "deployer.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "services.deployer"], env=env, stdout=out, stderr=out)
    out.close()
    return proc


async def _serving(proc: subprocess.Popen[bytes], port: int, data_dir: Path) -> None:
    """Its gRPC health says SERVING (it serves once it has replayed the log), or it exited."""

    async def up() -> bool:
        assert proc.poll() is None, (data_dir / "deployer.log").read_text()[-3000:]
        async with ServiceClient(f"127.0.0.1:{port}", timeout=1.0) as health:
            try:
                await asyncio.wait_for(health.until_serving(poll_seconds=0.05), 0.5)
                return True
            except TimeoutError:
                return False

    await poll_until(up, "the deployer serving", DEADLINE)


async def test_a_deployer_sigkilled_mid_deploy_finishes_it_after_its_restart(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    runner = await TargetRunner.start(fresh_stream)
    conn = await connect(
        fresh_stream, name="watch", wait_seconds=5, credentials=natsauth.credentials("deployer")
    )
    watch = await open_view(JetStreamEventLog(conn, StreamSettings(), timeout=2.0), "watch", Watcher)
    view = watch.state
    port = free_port()
    proc = _start(fresh_stream, registry, tmp_path, port)
    chan = channel(f"127.0.0.1:{port}")
    stub = deploy_pb2_grpc.DeployerStub(chan)
    try:
        await _serving(proc, port, tmp_path)
        assert (tmp_path / "deployer.token").exists()  # its own operator token for the registry
        md = registry.md()
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetDeployment(deploy_pb2.GetDeploymentRequest(group="web"), metadata=md, timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        v1 = GroupSpec(name="web", cmd="sleep 1000", instances=4)
        await registry.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec_to_pb(v1)), metadata=md)
        await poll_until(lambda: len(view.ready_tasks("web")) == 4, "4 ready tasks of v1", DEADLINE)
        request = deploy_pb2.DeployRequest(
            group="web",
            spec=spec_to_pb(v1.model_copy(update={"cmd": "sleep 1001"})),
            strategy=deploy_pb2.Strategy(min_ready_seconds=0.5, maximum_over_capacity=0.25),
        )
        reply = await stub.Deploy(request, metadata=md, timeout=10)
        dep_id = reply.deployment.id

        def midway() -> bool:
            d = view.deployments.by_id.get(dep_id)
            return d is not None and d.new_running >= 1 and d.active

        await poll_until(midway, "the deployment under way", DEADLINE)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert view.deployments.by_id[dep_id].active
        proc = _start(fresh_stream, registry, tmp_path, port)

        def ended() -> bool:
            d = view.deployments.by_id.get(dep_id)
            return d is not None and d.ended

        await poll_until(ended, "the deployment ended after the restart", DEADLINE)
        assert view.deployments.by_id[dep_id].state == "succeeded"
        await poll_until(
            lambda: sorted(t.group_version for t in view.group_tasks("web") if not t.terminal) == [2] * 4,
            "only v2 tasks left",
            DEADLINE,
        )
        assert view.launched.get(2) == 4
        assert view.min_ready is not None and view.min_ready >= 4
    finally:
        await chan.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        await runner.stop()
        await watch.stop(snapshot=False)
        await conn.close()
