"""Where each cluster's scheduler is reached: registered with the cluster over gRPC or REST, listed by
both, and moved by registering again (one new event; nothing for a repeat)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from bay.v1 import group_pb2, registry_pb2

from tests.integration.gateway_harness import Stack, start_stack


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    s = await start_stack(fresh_stream, tmp_path)
    yield s
    await s.stop()


async def _grpc_clusters(stack: Stack) -> dict[str, group_pb2.Cluster]:
    reg = stack.registry
    reply = await reg.stub.ListClusters(registry_pb2.ListClustersRequest(), metadata=reg.md())
    return {c.name: c for c in reply.clusters}


async def test_registered_over_grpc_and_moved(stack: Stack) -> None:
    reg = stack.registry
    sim = group_pb2.Cluster(
        name="sim", backend="mesos", address="127.0.0.1:5050", scheduler_address="127.0.0.1:50062"
    )
    made = await reg.stub.RegisterCluster(registry_pb2.RegisterClusterRequest(cluster=sim), metadata=reg.md())
    assert made.scheduler_address == "127.0.0.1:50062" and made.address == "127.0.0.1:5050"
    assert (await _grpc_clusters(stack))["sim"].scheduler_address == "127.0.0.1:50062"
    first_registered = made.registered.ToNanoseconds()

    before = await stack.last_sequence()
    for repeat in ("127.0.0.1:50062", ""):  # the same again, or an older client that says nothing
        again = group_pb2.Cluster(
            name="sim", backend="mesos", address="127.0.0.1:5050", scheduler_address=repeat
        )
        same = await reg.stub.RegisterCluster(
            registry_pb2.RegisterClusterRequest(cluster=again), metadata=reg.md()
        )
        assert same.scheduler_address == "127.0.0.1:50062"
    assert await stack.last_sequence() == before

    sim.scheduler_address = "127.0.0.1:50099"
    moved = await reg.stub.RegisterCluster(
        registry_pb2.RegisterClusterRequest(cluster=sim), metadata=reg.md()
    )
    assert moved.scheduler_address == "127.0.0.1:50099"
    assert moved.registered.ToNanoseconds() == first_registered  # still when it was first registered
    assert await stack.last_sequence() == before + 1  # one ClusterRegistered: the change is in the log
    watch = reg.stub.Watch(
        registry_pb2.WatchRequest(from_sequence=1, subject_filter="bay.ev.cluster.sim"), metadata=reg.md()
    )
    stream = watch.__aiter__()
    recorded = [await asyncio.wait_for(stream.__anext__(), 5) for _ in range(2)]
    watch.cancel()
    addresses = [group_pb2.ClusterRegistered.FromString(r.envelope.payload.value).cluster for r in recorded]
    assert [c.scheduler_address for c in addresses] == ["127.0.0.1:50062", "127.0.0.1:50099"]

    elsewhere = group_pb2.Cluster(name="sim", backend="mesos", address="10.0.0.1:5050")
    with pytest.raises(grpc.aio.AioRpcError) as info:  # another master is another cluster: refused
        await reg.stub.RegisterCluster(
            registry_pb2.RegisterClusterRequest(cluster=elsewhere), metadata=reg.md()
        )
    assert info.value.code() == grpc.StatusCode.ABORTED


async def test_registered_and_listed_over_rest(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    body = {"name": "local", "backend": "local", "scheduler_address": "127.0.0.1:50061"}
    made = await c.post("/v1/clusters", json=body, headers=op)  # `local` exists without one: a change
    assert made.status_code == 201, made.text
    assert made.json()["scheduler_address"] == "127.0.0.1:50061"
    listed = (await c.get("/v1/clusters", headers=stack.viewer)).json()["clusters"]
    assert [(x["name"], x["address"], x["scheduler_address"]) for x in listed] == [
        ("local", "", "127.0.0.1:50061")
    ]
    assert (await _grpc_clusters(stack))["local"].scheduler_address == "127.0.0.1:50061"

    before = await stack.last_sequence()
    bad = await c.post("/v1/clusters", json={**body, "scheduler_address": "somewhere"}, headers=op)
    assert bad.status_code == 422
    assert [v["field"] for v in bad.json()["violations"]] == ["scheduler_address"]
    assert "host:port" in bad.json()["violations"][0]["description"]
    assert await stack.last_sequence() == before
