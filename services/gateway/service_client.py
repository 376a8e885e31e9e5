"""A Bay service the gateway calls over gRPC (a cluster's scheduler, the DNS service): one channel,
a short deadline on every call, the caller's metadata on every call, and a failed call translated
into the BayError it stands for. A service that is down is :class:`~libs.errors.Unavailable` (HTTP
503 with a hint naming how to start it), at once when its port refuses and within the deadline
otherwise.
"""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.protobuf import message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.errors import BayError, Unavailable
from libs.grpcutil import channel, error_from_rpc
from services.gateway.registry_client import Caller

Q = TypeVar("Q", bound=message.Message)
R = TypeVar("R", bound=message.Message)


class ServiceClient:
    def __init__(self, addr: str, *, timeout: float, health_service: str) -> None:
        self.addr = addr
        self.timeout = timeout
        self.health_service = health_service
        # short reconnect backoff: a service that comes back is reachable again within seconds
        self.channel = channel(addr, options=[("grpc.max_reconnect_backoff_ms", 2000)])
        self._health = health_pb2_grpc.HealthStub(self.channel)

    @property
    def what(self) -> str:
        """The service as error messages name it."""
        raise NotImplementedError

    def down_hint(self) -> str:
        raise NotImplementedError

    def late(self, seconds: float) -> Unavailable:
        return Unavailable(
            f"{self.what} ({self.addr}) did not answer within {seconds:g} s", hint=self.down_hint()
        )

    def translate(self, exc: grpc.aio.AioRpcError) -> BayError:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return self.late(self.timeout)
        if code == grpc.StatusCode.UNAVAILABLE:  # down, or its own dependency (NATS) is
            return Unavailable(
                f"{self.what} ({self.addr}) is unavailable: {exc.details()}", hint=self.down_hint()
            )
        return error_from_rpc(exc)

    async def call(self, rpc: grpc.aio.UnaryUnaryMultiCallable[Q, R], request: Q, caller: Caller) -> R:
        try:
            return await rpc(request, metadata=caller.metadata(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self.translate(exc) from exc

    async def serving(self, timeout: float) -> bool:
        """The service's gRPC health status, within ``timeout``."""
        try:
            reply = await self._health.Check(
                health_pb2.HealthCheckRequest(service=self.health_service), timeout=timeout
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self.channel.close()
