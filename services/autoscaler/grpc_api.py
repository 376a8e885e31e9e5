"""gRPC ``bay.v1.Autoscaler``: requests become commands; domain errors become status codes.

Mutations need an operator token, reads a viewer token (libs.auth), as the registry's.
"""

from __future__ import annotations

import grpc
from bay.v1 import autoscale_pb2, autoscale_pb2_grpc, registry_pb2

from libs.auth import Principal, TokenStore
from libs.events import EventMeta
from libs.grpcutil import metadata_value, translate_errors
from services.autoscaler.adapters.wire import decision_to_pb
from services.autoscaler.service_layer.autoscaler import Autoscaler


class AutoscalerServicer(autoscale_pb2_grpc.AutoscalerServicer):
    def __init__(self, autoscaler: Autoscaler, tokens: TokenStore) -> None:
        self.autoscaler = autoscaler
        self.tokens = tokens

    def _principal(self, context: grpc.aio.ServicerContext, role: str) -> Principal:
        return self.tokens.authenticate(metadata_value(context, "authorization"), needed=role)

    def _meta(self, context: grpc.aio.ServicerContext, opts: registry_pb2.CommandOptions) -> EventMeta:
        who = self._principal(context, "operator")
        return EventMeta.command(who.name, metadata_value(context, "x-correlation-id"), opts.idempotency_key)

    @translate_errors
    async def SetPolicy(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        s, duplicate = await self.autoscaler.set_policy(request.policy, meta)
        return autoscale_pb2.PolicyReply(policy=s.message, duplicate=duplicate)

    @translate_errors
    async def GetPolicy(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        return autoscale_pb2.PolicyReply(policy=self.autoscaler.scaled(request.group).message)

    @translate_errors
    async def RemovePolicy(self, request, context):  # type: ignore[no-untyped-def]
        meta = self._meta(context, request.options)
        return autoscale_pb2.RemovePolicyReply(
            removed=await self.autoscaler.remove_policy(request.group, meta)
        )

    @translate_errors
    async def ListPolicies(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        scaled = self.autoscaler.view.scaled
        return autoscale_pb2.ListPoliciesReply(policies=[scaled[g].message for g in sorted(scaled)])

    @translate_errors
    async def Status(self, request, context):  # type: ignore[no-untyped-def]
        self._principal(context, "viewer")
        s = self.autoscaler.scaled(request.group)
        now = self.autoscaler.now.get(request.group)
        out = autoscale_pb2.AutoscaleStatus(
            policy=s.message,
            decisions=[decision_to_pb(d) for _, d in reversed(s.decisions)],
        )
        if now is not None:
            out.current, out.ready, out.reason = now.current, now.ready, now.reason
            if now.latest is not None:
                out.latest.CopyFrom(decision_to_pb(now.latest))
        else:
            out.reason = "not evaluated yet"
        return out
