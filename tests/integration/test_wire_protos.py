"""``protos/`` alone is enough for a client in another language: it compiles with nothing but protoc's
own well-known types, its standard files match what Bay's Python servers really use, and the error
details a real registry sends decode with it (no Python package's copy of google.rpc involved)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from bay.v1 import group_pb2, registry_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection_v1 import reflection_pb2 as v1_pb2

from tests.integration.registry_harness import RunningRegistry, start_registry

PROTOS = Path(__file__).resolve().parents[2] / "protos"
WELL_KNOWN = Path(str(resources.files("grpc_tools") / "_proto"))  # what protoc ships, nothing else


def compile_protos(out: Path) -> descriptor_pool.DescriptorPool:
    """Every .proto under protos/ through protoc with ``-Iprotos`` only; the result as a fresh pool."""
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    descriptor_set = out / "all.binpb"
    done = subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{WELL_KNOWN}",
            f"--python_out={out}", f"--descriptor_set_out={descriptor_set}", "--include_imports", *files,
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file:
        pool.Add(f)
    return pool


@pytest.fixture(scope="module")
def client_pool(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pool.DescriptorPool:
    return compile_protos(tmp_path_factory.mktemp("protoc"))


def test_protos_compile_alone_and_hold_what_a_client_needs(
    client_pool: descriptor_pool.DescriptorPool,
) -> None:
    for service in (
        "bay.v1.Registry",
        "bay.v1.Scheduler",
        "bay.v1.Dns",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ):
        assert client_pool.FindServiceByName(service).methods
    for name in ("google.rpc.Status", "google.rpc.BadRequest", "google.rpc.ErrorInfo", "google.rpc.Help"):
        assert client_pool.FindMessageTypeByName(name)


def _shape(m: descriptor.Descriptor) -> dict[str, object]:
    """What the wire depends on: each field's number, type and label, and nested types alike."""
    return {
        "fields": {f.name: (f.number, f.type, f.is_repeated, f.message_type and f.message_type.name)
                   for f in m.fields},
        "nested": {n.name: _shape(n) for n in m.nested_types},
        "enums": {e.name: {v.name: v.number for v in e.values} for e in m.enum_types},
    }  # fmt: skip


@pytest.mark.parametrize(
    "installed",
    [health_pb2.DESCRIPTOR, status_pb2.DESCRIPTOR, error_details_pb2.DESCRIPTOR, v1alpha_pb2.DESCRIPTOR],
    ids=lambda d: d.package,
)
def test_standard_protos_match_what_the_python_servers_use(
    client_pool: descriptor_pool.DescriptorPool, installed: descriptor.FileDescriptor
) -> None:
    # v1alpha is not in protos/: v1 is, and Bay serves v1 by re-reading v1alpha (libs/reflection.py)
    package = installed.package.replace("grpc.reflection.v1alpha", "grpc.reflection.v1")
    for name, m in installed.message_types_by_name.items():
        ours = client_pool.FindMessageTypeByName(f"{package}.{name}")
        assert _shape(ours) == _shape(m), name
    for name, s in installed.services_by_name.items():
        ours_methods = client_pool.FindServiceByName(f"{package}.{name}").methods_by_name
        assert set(ours_methods) == set(s.methods_by_name), name


def test_generated_reflection_v1_is_the_same_wire_as_v1alpha() -> None:
    for name, m in v1alpha_pb2.DESCRIPTOR.message_types_by_name.items():
        assert _shape(v1_pb2.DESCRIPTOR.message_types_by_name[name]) == _shape(m), name


@pytest_asyncio.fixture
async def reg(fresh_stream: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    r = await start_registry(fresh_stream, tmp_path)
    cluster = group_pb2.Cluster(name="local", backend="local")
    await r.stub.RegisterCluster(registry_pb2.RegisterClusterRequest(cluster=cluster), metadata=r.md())
    yield r
    await r.stop()


def _details_bin(exc: grpc.aio.AioRpcError) -> bytes:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            return value
    raise AssertionError("no grpc-status-details-bin trailer")


def _decode(pool: descriptor_pool.DescriptorPool, full_name: str, data: bytes) -> object:
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    return cls.FromString(data)


async def test_error_details_decode_with_protos_alone(
    reg: RunningRegistry, client_pool: descriptor_pool.DescriptorPool
) -> None:
    spec = group_pb2.GroupSpec(name="web", cmd="sleep 1000", cluster="local")
    await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md())

    stale = registry_pb2.CommandOptions(expected_version=4)
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await reg.stub.ScaleGroup(
            registry_pb2.ScaleGroupRequest(name="web", instances=2, options=stale), metadata=reg.md()
        )
    status = _decode(client_pool, "google.rpc.Status", _details_bin(conflict.value))
    assert status.code == grpc.StatusCode.ABORTED.value[0]  # type: ignore[attr-defined]
    by_type = {d.type_url.rpartition("/")[2]: d.value for d in status.details}  # type: ignore[attr-defined]
    info = _decode(client_pool, "google.rpc.ErrorInfo", by_type["google.rpc.ErrorInfo"])
    assert (info.reason, info.domain, dict(info.metadata)) == (  # type: ignore[attr-defined]
        "VERSION_CONFLICT",
        "bay",
        {"current_version": "1"},
    )
    help_ = _decode(client_pool, "google.rpc.Help", by_type["google.rpc.Help"])
    assert help_.links[0].description  # type: ignore[attr-defined]

    bad = group_pb2.GroupSpec(name="Bad_Name", cmd="x", cluster="local")
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=bad), metadata=reg.md())
    status = _decode(client_pool, "google.rpc.Status", _details_bin(invalid.value))
    by_type = {d.type_url.rpartition("/")[2]: d.value for d in status.details}  # type: ignore[attr-defined]
    request = _decode(client_pool, "google.rpc.BadRequest", by_type["google.rpc.BadRequest"])
    assert [v.field for v in request.field_violations] == ["spec.name"]  # type: ignore[attr-defined]
