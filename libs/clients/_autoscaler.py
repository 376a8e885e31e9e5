"""The autoscaler: a policy per group, and why it scales (or does not) now."""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import grpc
from bay.v1 import autoscale_pb2, autoscale_pb2_grpc, registry_pb2

from libs.clients._base import ServiceClient
from libs.clients._caller import Caller
from libs.errors import BayError, ValidationFailed

AUTOSCALER_SERVICE = autoscale_pb2.DESCRIPTOR.services_by_name["Autoscaler"].full_name

_INDEX = re.compile(r"\[([0-9]+)\]")


class AutoscalerClient(ServiceClient):
    """``AutoscalerClient(settings.autoscaler_addr, timeout=3.0, caller=Caller.bearer(token))``.

    A policy that is not sound is a :class:`~libs.errors.ValidationFailed` naming its fields
    (dotted: ``metrics.0.target``); a group without a policy is NotFound.
    """

    what = "the autoscaler"
    health_service = AUTOSCALER_SERVICE

    def __init__(
        self,
        addr: str,
        *,
        timeout: float,
        caller: Caller | None = None,
        configured_by: str = "this service",
        field_names: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(addr, timeout=timeout, caller=caller, **kwargs)
        self.configured_by = configured_by
        self.field_names = dict(field_names or {})
        self.stub = cast(
            "autoscale_pb2_grpc.AutoscalerAsyncStub", autoscale_pb2_grpc.AutoscalerStub(self.channel)
        )

    def down_hint(self) -> str:
        return (
            "start the autoscaler (`bay up` runs it; else `python -m services.autoscaler`), or fix "
            f"its address in {self.configured_by}'s BAY_AUTOSCALER_ADDR"
        )

    def translate(self, exc: grpc.aio.AioRpcError) -> BayError:
        err = super().translate(exc)
        if isinstance(err, ValidationFailed):
            return ValidationFailed([replace(v, field=self._field(v.field)) for v in err.violations])
        return err

    def _field(self, path: str) -> str:
        dotted = _INDEX.sub(r".\1", path)
        return self.field_names.get(dotted, dotted)

    async def set_policy(
        self, policy: autoscale_pb2.AutoscalePolicy, *, reason: str = "", idempotency_key: str = ""
    ) -> autoscale_pb2.PolicyReply:
        request = autoscale_pb2.SetPolicyRequest(policy=policy, options=_options(idempotency_key, reason))
        reply: autoscale_pb2.PolicyReply = await self.call(self.stub.SetPolicy, request)
        return reply

    async def get_policy(self, group: str) -> autoscale_pb2.AutoscalePolicy:
        reply: autoscale_pb2.PolicyReply = await self.call(
            self.stub.GetPolicy, autoscale_pb2.GetPolicyRequest(group=group)
        )
        return reply.policy

    async def remove_policy(self, group: str, *, reason: str = "", idempotency_key: str = "") -> bool:
        request = autoscale_pb2.RemovePolicyRequest(group=group, options=_options(idempotency_key, reason))
        reply: autoscale_pb2.RemovePolicyReply = await self.call(self.stub.RemovePolicy, request)
        return reply.removed

    async def list_policies(self) -> builtins.list[autoscale_pb2.AutoscalePolicy]:
        reply: autoscale_pb2.ListPoliciesReply = await self.call(
            self.stub.ListPolicies, autoscale_pb2.ListPoliciesRequest()
        )
        return [*reply.policies]

    async def status(self, group: str) -> autoscale_pb2.AutoscaleStatus:
        reply: autoscale_pb2.AutoscaleStatus = await self.call(
            self.stub.Status, autoscale_pb2.GetPolicyRequest(group=group)
        )
        return reply


def _options(idempotency_key: str, reason: str) -> registry_pb2.CommandOptions:
    return registry_pb2.CommandOptions(idempotency_key=idempotency_key, reason=reason)
