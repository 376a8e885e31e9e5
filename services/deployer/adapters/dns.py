"""Whether DNS answers a task: the DNS service's Lookup (libs.clients.DnsClient)."""

from __future__ import annotations

from libs.clients import DnsClient
from services.deployer.ports import DnsPort


class GrpcDns(DnsPort):
    def __init__(self, client: DnsClient) -> None:
        self.client = client

    async def answers(self, service: str, cluster: str) -> frozenset[str] | None:
        reply = await self.client.lookup(service, cluster)
        return frozenset(r.task_id for r in reply.records if r.task_id)
