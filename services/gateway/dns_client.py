"""The DNS service (``BAY_DNS_ADDR``) as the gateway calls it over gRPC: its debug listing and counters.

Like the schedulers', every call carries the caller's ``authorization`` and ``x-correlation-id``
and has a short deadline; a failed call comes back as the BayError it stands for. A DNS service that
is down is :class:`~libs.errors.Unavailable` (HTTP 503 with a hint), at once when its port refuses
and within the deadline otherwise. Name resolution itself never goes through here: clients ask the
DNS port directly, so the gateway only needs this for ``/v1/dns``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, cast

import grpc
from bay.v1 import dns_pb2, dns_pb2_grpc
from google.protobuf import message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.errors import BayError, Unavailable
from libs.grpcutil import channel, error_from_rpc
from services.gateway.registry_client import Caller

DNS_SERVICE = dns_pb2.DESCRIPTOR.services_by_name["Dns"].full_name
DOWN_HINT = (
    "start the DNS service (`bay up` runs it; else `python -m services.dns`), or fix its gRPC address "
    "in the gateway's BAY_DNS_ADDR"
)

Q = TypeVar("Q", bound=message.Message)
R = TypeVar("R", bound=message.Message)


class DnsClient:
    def __init__(self, addr: str, *, timeout: float) -> None:
        self.addr = addr
        self.timeout = timeout
        # short reconnect backoff: a DNS service that comes back is reachable again within seconds
        self.channel = channel(addr, options=[("grpc.max_reconnect_backoff_ms", 2000)])
        # DnsAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast("dns_pb2_grpc.DnsAsyncStub", dns_pb2_grpc.DnsStub(self.channel))
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def translate(self, exc: grpc.aio.AioRpcError) -> BayError:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return Unavailable(
                f"the DNS service ({self.addr}) did not answer within {self.timeout:g} s", hint=DOWN_HINT
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(
                f"the DNS service ({self.addr}) is unavailable: {exc.details()}", hint=DOWN_HINT
            )
        return error_from_rpc(exc)

    async def call(self, rpc: grpc.aio.UnaryUnaryMultiCallable[Q, R], request: Q, caller: Caller) -> R:
        try:
            return await rpc(request, metadata=caller.metadata(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self.translate(exc) from exc

    async def serving(self, timeout: float) -> bool:
        """The DNS service's gRPC health status, within ``timeout``."""
        try:
            reply = await self._health.Check(
                health_pb2.HealthCheckRequest(service=DNS_SERVICE), timeout=timeout
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def bound(self, caller: Caller) -> BoundDns:
        return BoundDns(self, caller)

    async def close(self) -> None:
        await self.channel.close()


@dataclass(frozen=True)
class BoundDns:
    """The DNS service on behalf of one caller: what a route receives."""

    client: DnsClient
    caller: Caller

    async def lookup(self, service: str, cluster: str) -> dns_pb2.DnsLookupReply:
        request = dns_pb2.DnsLookupRequest(service=service, cluster=cluster)
        return await self.client.call(self.client.stub.Lookup, request, self.caller)

    async def stats(self) -> dns_pb2.DnsStatsReply:
        return await self.client.call(self.client.stub.Stats, dns_pb2.DnsStatsRequest(), self.caller)
