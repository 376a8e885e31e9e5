"""The registry port over gRPC (libs.clients.RegistryClient), with the autoscaler's operator token."""

from __future__ import annotations

from libs.clients import RegistryClient
from services.autoscaler.ports import ScalePort


class GrpcRegistry(ScalePort):
    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    async def scale(self, group: str, instances: int, *, reason: str, key: str) -> int:
        reply = await self.client.scale(group, instances, reason=reason, idempotency_key=key)
        return int(reply.sequence)
