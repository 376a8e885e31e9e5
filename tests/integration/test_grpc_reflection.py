"""Server reflection over real gRPC, in both versions clients ask for: v1 (grpcurl, Postman, Node's
@grpc/reflection) and v1alpha (older tools). The registry stands for every server ``make_server``
builds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
import pytest_asyncio
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_pb2_grpc
from grpc_reflection_v1 import reflection_pb2 as v1_pb2
from grpc_reflection_v1 import reflection_pb2_grpc as v1_pb2_grpc

from tests.integration.registry_harness import RunningRegistry, start_registry

VERSIONS = [
    pytest.param((v1_pb2, v1_pb2_grpc), id="v1"),
    pytest.param((v1alpha_pb2, v1alpha_pb2_grpc), id="v1alpha"),
]


@pytest_asyncio.fixture
async def reg(fresh_stream: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    r = await start_registry(fresh_stream, tmp_path)
    yield r
    await r.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_lists_services_and_serves_descriptors(
    reg: RunningRegistry, version: tuple[ModuleType, ModuleType]
) -> None:
    pb2, pb2_grpc = version
    call = pb2_grpc.ServerReflectionStub(reg.channel).ServerReflectionInfo()

    await call.write(pb2.ServerReflectionRequest(list_services=""))
    listed = await asyncio.wait_for(call.read(), 5)
    names = {s.name for s in listed.list_services_response.service}
    assert names == {
        "bay.v1.Registry",
        "bay.v1.FoldStatus",  # the fold's progress and skipped events, beside every folding service
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }

    # every listed service can be described (grpcurl's `describe` asks exactly this)
    for name in sorted(names):
        await call.write(pb2.ServerReflectionRequest(file_containing_symbol=name))
        reply = await asyncio.wait_for(call.read(), 5)
        assert reply.WhichOneof("message_response") == "file_descriptor_response", (name, reply)

    await call.write(pb2.ServerReflectionRequest(file_containing_symbol="bay.v1.Registry"))
    described = await asyncio.wait_for(call.read(), 5)
    assert described.original_request.file_containing_symbol == "bay.v1.Registry"
    # the file and what it imports are enough to build the API from nothing
    pool = descriptor_pool.DescriptorPool()
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in described.file_descriptor_response.file_descriptor_proto
    ]
    pending = {f.name: f for f in files}
    while pending:  # add in dependency order
        ready = [f for f in pending.values() if all(d not in pending for d in f.dependency)]
        assert ready, f"unresolvable imports among {sorted(pending)}"
        for f in ready:
            pool.Add(f)
            del pending[f.name]
    method = pool.FindServiceByName("bay.v1.Registry").methods_by_name["ScaleGroup"]
    assert method.input_type.full_name == "bay.v1.ScaleGroupRequest"
    assert method.output_type.fields_by_name["group"].message_type.full_name == "bay.v1.Group"

    await call.write(pb2.ServerReflectionRequest(file_by_filename="bay/v1/group.proto"))
    by_name = await asyncio.wait_for(call.read(), 5)
    first = descriptor_pb2.FileDescriptorProto.FromString(
        by_name.file_descriptor_response.file_descriptor_proto[0]
    )
    assert first.name == "bay/v1/group.proto" and first.package == "bay.v1"

    await call.write(pb2.ServerReflectionRequest(file_containing_symbol="bay.v1.NoSuchThing"))
    missing = await asyncio.wait_for(call.read(), 5)
    assert missing.error_response.error_code == 5  # NOT_FOUND, as an answer on the stream
    await call.done_writing()
