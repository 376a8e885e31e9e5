"""gRPC server reflection, v1 and v1alpha, from one descriptor logic.

grpcio-reflection serves only ``grpc.reflection.v1alpha``; current clients (grpcurl, Postman,
@grpc/reflection for Node) ask ``grpc.reflection.v1`` first. v1 is v1alpha under another package
name, message for message and field for field, so the v1 servicer re-reads each request as v1alpha,
lets grpcio-reflection's servicer answer it, and re-reads the answer as v1: one implementation of
the descriptor lookups, and nothing of ours that could drift from it.
(``tests/unit/test_reflection_protos.py`` checks that the two protos still match field for field.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection as reflection_v1alpha
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_pb2_grpc
from grpc_reflection_v1 import reflection_pb2 as v1_pb2
from grpc_reflection_v1 import reflection_pb2_grpc as v1_pb2_grpc

__all__ = ["SERVICE_NAMES", "enable_reflection"]

V1_SERVICE_NAME: str = v1_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name
SERVICE_NAMES = (V1_SERVICE_NAME, reflection_v1alpha.SERVICE_NAME)


class ReflectionV1(v1_pb2_grpc.ServerReflectionServicer):
    """``grpc.reflection.v1.ServerReflection``, answered by the v1alpha servicer."""

    def __init__(self, v1alpha: reflection_v1alpha.aio.ReflectionServicer) -> None:
        self._v1alpha = v1alpha

    async def ServerReflectionInfo(  # type: ignore[override]
        self, request_iterator: AsyncIterator[v1_pb2.ServerReflectionRequest], context: Any
    ) -> AsyncIterator[v1_pb2.ServerReflectionResponse]:
        async def as_v1alpha() -> AsyncIterator[v1alpha_pb2.ServerReflectionRequest]:
            async for request in request_iterator:
                yield v1alpha_pb2.ServerReflectionRequest.FromString(request.SerializeToString())

        async for response in self._v1alpha.ServerReflectionInfo(as_v1alpha(), context):
            yield v1_pb2.ServerReflectionResponse.FromString(response.SerializeToString())


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha on ``server``, listing ``service_names`` and themselves."""
    names = [*service_names, *SERVICE_NAMES]
    v1alpha = reflection_v1alpha.aio.ReflectionServicer(names)
    v1alpha_pb2_grpc.add_ServerReflectionServicer_to_server(v1alpha, server)
    v1_pb2_grpc.add_ServerReflectionServicer_to_server(ReflectionV1(v1alpha), server)
