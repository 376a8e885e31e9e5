"""The registry as the gateway calls it over gRPC.

Every call carries the caller's ``authorization`` and the request's ``x-correlation-id`` as metadata
and has a deadline, so a dead registry is a quick :class:`~libs.errors.Unavailable`, never a hang.
A failed call comes back as the BayError it stands for (``libs.grpcutil.error_from_rpc``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar, cast

import grpc
from bay.v1 import registry_pb2, registry_pb2_grpc
from google.protobuf import message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.errors import BayError, Unavailable, ValidationFailed
from libs.grpcutil import channel, error_from_rpc

REGISTRY_SERVICE = registry_pb2.DESCRIPTOR.services_by_name["Registry"].full_name

Q = TypeVar("Q", bound=message.Message)
R = TypeVar("R", bound=message.Message)


@dataclass(frozen=True)
class Caller:
    """Who is asking, as the registry must hear it."""

    authorization: str | None
    correlation_id: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        md = [("x-correlation-id", self.correlation_id)]
        if self.authorization:
            md.append(("authorization", self.authorization))
        return tuple(md)


class RegistryClient:
    def __init__(self, addr: str, *, timeout: float) -> None:
        self.addr = addr
        self.timeout = timeout
        self.channel = channel(addr)
        # RegistryAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast("registry_pb2_grpc.RegistryAsyncStub", registry_pb2_grpc.RegistryStub(self.channel))
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def call(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[Q, R],
        request: Q,
        caller: Caller,
        *,
        body_prefix: str = "",
    ) -> R:
        """``await stub.Method(request)`` with metadata and deadline.

        ``body_prefix``: the part of the registry's field paths the REST body leaves out (the body of
        ``POST /v1/groups`` is the spec itself, so the registry's ``spec.cluster`` is ``cluster``).
        """
        try:
            return await rpc(request, metadata=caller.metadata(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._translate(exc, body_prefix) from exc

    def _translate(self, exc: grpc.aio.AioRpcError, body_prefix: str) -> BayError:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return Unavailable(
                f"the registry ({self.addr}) did not answer within {self.timeout:g} s",
                hint="the command may or may not have been carried out: retry with the same Idempotency-Key",
            )
        if code == grpc.StatusCode.UNAVAILABLE:  # the registry is down, or its own dependency (NATS) is
            return Unavailable(
                f"registry ({self.addr}): {exc.details()}",
                hint="nothing was written; retry with the same Idempotency-Key once it is back",
            )
        err = error_from_rpc(exc)
        if isinstance(err, ValidationFailed) and body_prefix:
            err = ValidationFailed(
                [replace(v, field=v.field.removeprefix(body_prefix)) for v in err.violations]
            )
        return err

    async def serving(self, timeout: float) -> bool:
        """The registry's gRPC health status, within ``timeout``."""
        try:
            reply = await self._health.Check(
                health_pb2.HealthCheckRequest(service=REGISTRY_SERVICE), timeout=timeout
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def bound(self, caller: Caller) -> BoundRegistry:
        return BoundRegistry(self, caller)

    async def close(self) -> None:
        await self.channel.close()


@dataclass(frozen=True)
class BoundRegistry:
    """The registry on behalf of one caller: what a route receives."""

    client: RegistryClient
    caller: Caller

    @property
    def stub(self) -> registry_pb2_grpc.RegistryAsyncStub:
        return self.client.stub

    async def call(
        self, rpc: grpc.aio.UnaryUnaryMultiCallable[Q, R], request: Q, *, body_prefix: str = ""
    ) -> R:
        return await self.client.call(rpc, request, self.caller, body_prefix=body_prefix)
