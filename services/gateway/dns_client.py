"""The DNS service (``BAY_DNS_ADDR``) as the gateway calls it over gRPC: its debug listing and counters.

Like the schedulers', every call carries the caller's ``authorization`` and ``x-correlation-id``
and has a short deadline; a failed call comes back as the BayError it stands for. A DNS service that
is down is :class:`~libs.errors.Unavailable` (HTTP 503 with a hint), at once when its port refuses
and within the deadline otherwise. Name resolution itself never goes through here: clients ask the
DNS port directly, so the gateway only needs this for ``/v1/dns``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from bay.v1 import dns_pb2, dns_pb2_grpc

from services.gateway.registry_client import Caller
from services.gateway.service_client import ServiceClient

DNS_SERVICE = dns_pb2.DESCRIPTOR.services_by_name["Dns"].full_name
DOWN_HINT = (
    "start the DNS service (`bay up` runs it; else `python -m services.dns`), or fix its gRPC address "
    "in the gateway's BAY_DNS_ADDR"
)


class DnsClient(ServiceClient):
    def __init__(self, addr: str, *, timeout: float) -> None:
        super().__init__(addr, timeout=timeout, health_service=DNS_SERVICE)
        # DnsAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast("dns_pb2_grpc.DnsAsyncStub", dns_pb2_grpc.DnsStub(self.channel))

    @property
    def what(self) -> str:
        return "the DNS service"

    def down_hint(self) -> str:
        return DOWN_HINT

    def bound(self, caller: Caller) -> BoundDns:
        return BoundDns(self, caller)


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
