"""The registry port over gRPC (libs.clients.RegistryClient)."""

from __future__ import annotations

from bay.v1 import registry_pb2

from libs.clients import RegistryClient
from libs.spec import GroupSpec
from libs.spec_pb import spec_to_pb
from services.deployer.domain.plan import Target
from services.deployer.ports import RegistryPort


def rollout_targets(targets: tuple[Target, ...]) -> list[registry_pb2.RolloutTarget]:
    out = []
    for t in targets:
        pb = registry_pb2.RolloutTarget(version=t.version, instances=t.instances, in_service=t.in_service)
        if t.weight is not None:
            pb.weight = t.weight
        out.append(pb)
    return out


class GrpcRegistry(RegistryPort):
    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    async def update_group(self, spec: GroupSpec, *, key: str) -> int:
        reply = await self.client.update_group(spec_to_pb(spec), idempotency_key=key)
        return int(reply.group.version)

    async def rollback_group(self, name: str, version: int, *, key: str) -> None:
        await self.client.rollback_group(name, version, idempotency_key=key)

    async def set_rollout(
        self, name: str, targets: tuple[Target, ...], *, deployment: str, reason: str, key: str
    ) -> None:
        await self.client.set_rollout(
            name, rollout_targets(targets), deployment=deployment, reason=reason, idempotency_key=key
        )
