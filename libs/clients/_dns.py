"""The DNS service's gRPC: its debug listing and counters.

Name resolution never goes through here: clients ask the DNS port directly.
"""

from __future__ import annotations

from typing import Any, cast

from bay.v1 import dns_pb2, dns_pb2_grpc

from libs.clients._base import ServiceClient
from libs.clients._caller import Caller

DNS_SERVICE = dns_pb2.DESCRIPTOR.services_by_name["Dns"].full_name


class DnsClient(ServiceClient):
    """``DnsClient(settings.dns_addr, timeout=2.0)``; ``configured_by`` names whose ``BAY_DNS_ADDR``
    holds the address, for the hint when the service is down."""

    what = "the DNS service"
    health_service = DNS_SERVICE

    def __init__(
        self,
        addr: str,
        *,
        timeout: float,
        caller: Caller | None = None,
        configured_by: str = "this service",
        **kwargs: Any,
    ) -> None:
        super().__init__(addr, timeout=timeout, caller=caller, **kwargs)
        self.configured_by = configured_by
        # DnsAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast("dns_pb2_grpc.DnsAsyncStub", dns_pb2_grpc.DnsStub(self.channel))

    def down_hint(self) -> str:
        return (
            "start the DNS service (`bay up` runs it; else `python -m services.dns`), or fix its gRPC "
            f"address in {self.configured_by}'s BAY_DNS_ADDR"
        )

    async def lookup(self, service: str, cluster: str = "") -> dns_pb2.DnsLookupReply:
        """The names the service answers under, its records now, and why a task is not in them."""
        reply: dns_pb2.DnsLookupReply = await self.call(
            self.stub.Lookup, dns_pb2.DnsLookupRequest(service=service, cluster=cluster)
        )
        return reply

    async def stats(self) -> dns_pb2.DnsStatsReply:
        reply: dns_pb2.DnsStatsReply = await self.call(self.stub.Stats, dns_pb2.DnsStatsRequest())
        return reply
