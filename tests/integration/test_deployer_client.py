"""DeployerClient against a real grpc.aio server (the fake deployer): typed calls, the caller's
metadata, error translation (409 both ways, field violations renamed, NotFound), the watch stream,
and a deployer that is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from bay.v1 import deploy_pb2

from libs.clients import Caller, DeployerClient
from libs.errors import Conflict, NotFound, Unavailable, ValidationFailed
from libs.natsserver import free_port
from tests.integration.deployer_fake import FakeDeployer, start_deployer

DEADLINE = 10.0


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDeployer]:
    running = await start_deployer()
    yield running
    await running.stop()


@pytest_asyncio.fixture
async def client(fake: FakeDeployer) -> AsyncIterator[DeployerClient]:
    async with DeployerClient(fake.addr, timeout=3.0, caller=Caller.bearer("tok", "corr-1")) as c:
        yield c


async def test_deploy_get_list_and_controls(fake: FakeDeployer, client: DeployerClient) -> None:
    strategy = deploy_pb2.Strategy(
        kind="canary", steps=[deploy_pb2.CanaryStep(set_share=0.25), deploy_pb2.CanaryStep(pause={})]
    )
    reply = await client.deploy("web", build="web-42", strategy=strategy, idempotency_key="k1")
    d = reply.deployment
    assert (d.id, d.state, d.to_build, reply.duplicate) == ("web-1", "running", "web-42", False)
    assert [s.name for s in d.steps] == ["share 25%", "pause", "promote"]
    method, request, auth, corr = fake.book.seen[-1]
    assert (method, auth, corr) == ("Deploy", "Bearer tok", "corr-1")
    assert isinstance(request, deploy_pb2.DeployRequest) and request.options.idempotency_key == "k1"

    again = await client.deploy("web", build="web-42", strategy=strategy, idempotency_key="k1")
    assert (again.deployment.id, again.duplicate) == ("web-1", True)

    assert (await client.get("web-1")).id == "web-1"
    assert (await client.get(group="web")).id == "web-1"
    assert [x.id for x in await client.list("web")] == ["web-1"]

    assert (await client.pause("web", reason="look")).deployment.state == "paused"
    assert (await client.resume("web")).deployment.state == "running"
    promoted = await client.promote("web")
    assert (promoted.deployment.current_step, promoted.deployment.state) == (1, "running")
    assert (await client.promote("web", all_steps=True)).deployment.state == "succeeded"
    undone = await client.undo("web")
    assert (undone.deployment.id, undone.deployment.to_build) == ("web-2", "web-41")
    assert (await client.abort("web", reason="no")).deployment.state == "aborted"


@pytest.mark.parametrize("code", [grpc.StatusCode.ABORTED, grpc.StatusCode.ALREADY_EXISTS])
async def test_a_second_deployment_is_a_conflict(
    fake: FakeDeployer, client: DeployerClient, code: grpc.StatusCode
) -> None:
    fake.book.conflict_code = code
    await client.deploy("web", build="web-42")
    with pytest.raises(Conflict) as info:
        await client.deploy("web", build="web-43")
    assert "web-1 running" in info.value.message
    superseding = await client.deploy("web", build="web-43", supersede=True)
    assert superseding.deployment.id == "web-2"
    assert (await client.get("web-1")).state == "superseded"


async def test_control_without_a_deployment_is_a_conflict(client: DeployerClient) -> None:
    with pytest.raises(Conflict, match="no running deployment"):
        await client.pause("web")


async def test_field_violations_and_not_found(fake: FakeDeployer) -> None:
    async with DeployerClient(fake.addr, timeout=3.0) as plain:
        with pytest.raises(ValidationFailed) as info:
            await plain.deploy("web", build="nope")
        assert [(v.field, v.description) for v in info.value.violations] == [
            ("build", "no build 'nope' is registered")
        ]
        with pytest.raises(NotFound):
            await plain.get("web-9")
        with pytest.raises(NotFound):
            await plain.deploy("ghost", build="web-42")
    renamed = DeployerClient(fake.addr, timeout=3.0, field_names={"strategy.kind": "kind"})
    async with renamed:
        with pytest.raises(ValidationFailed) as info:
            await renamed.deploy("web", build="web-42", strategy=deploy_pb2.Strategy(kind="sideways"))
        assert info.value.violations[0].field == "kind"
        share = deploy_pb2.Strategy(kind="canary", steps=[deploy_pb2.CanaryStep(set_share=2)])
        with pytest.raises(ValidationFailed) as info:
            await renamed.deploy("web", build="web-42", strategy=share)
        assert info.value.violations[0].field == "strategy.steps.0.set_share"  # dotted, as Bay's paths are


async def test_watch_follows_until_the_deployment_ends(fake: FakeDeployer, client: DeployerClient) -> None:
    await client.deploy("web", build="web-42")
    stream = await client.watch(group="web")
    first = await anext(stream)
    assert (first.id, first.new_ready) == ("web-1", 0)
    d = fake.book.deployments["web-1"]

    def one_ready(x: deploy_pb2.Deployment) -> None:
        x.new_ready = 1

    await fake.book.change(d, one_ready)
    assert (await asyncio.wait_for(anext(stream), DEADLINE)).new_ready == 1
    await client.promote("web", all_steps=True)
    last = await asyncio.wait_for(anext(stream), DEADLINE)
    assert last.state == "succeeded"
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), DEADLINE)


async def test_watch_of_nothing_raises_before_the_stream(client: DeployerClient) -> None:
    with pytest.raises(NotFound):
        await client.watch(group="web")


async def test_a_deployer_that_is_down_is_unavailable_at_once() -> None:
    addr = f"127.0.0.1:{free_port()}"
    async with DeployerClient(addr, timeout=5.0, configured_by="the gateway") as down:
        with pytest.raises(Unavailable) as info:
            await asyncio.wait_for(down.get(group="web"), 4.0)  # well before the 5 s deadline
        assert info.value.message.startswith(f"the deployer ({addr}) is unavailable")
        assert "the gateway's BAY_DEPLOYER_ADDR" in info.value.hint
        with pytest.raises(Unavailable):
            await asyncio.wait_for(down.watch(group="web"), 4.0)
        assert not await down.serving(1.0)


async def test_health_names_the_deployer_service(fake: FakeDeployer, client: DeployerClient) -> None:
    assert await client.serving(2.0)
