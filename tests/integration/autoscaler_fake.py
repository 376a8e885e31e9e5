"""A small in-process ``bay.v1.Autoscaler`` (a real grpc.aio server on a free port) for the tests of
its clients: the gateway's autoscale routes and the CLI's ``bay autoscale``. It keeps policies in
memory, answers a repeated idempotency key once, refuses what the autoscaler would refuse with field
violations in its own words (``policy.metrics[0].backlog.stream``), and answers Status with what a test
put in :attr:`AutoscalerBook.statuses` (else a bare one).

It is not the autoscaler: nothing here measures or scales. Its rules are the API's (autoscale.proto).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from bay.v1 import autoscale_pb2, autoscale_pb2_grpc

from libs.clients import AUTOSCALER_SERVICE
from libs.errors import FieldViolation, NotFound, ValidationFailed
from libs.grpcutil import make_server, metadata_value, translate_errors

#: the streams the fake knows; a backlog metric on another is refused as the autoscaler refuses it
STREAMS = {"jobs"}


def _copy(p: autoscale_pb2.AutoscalePolicy) -> autoscale_pb2.AutoscalePolicy:
    out = autoscale_pb2.AutoscalePolicy()
    out.CopyFrom(p)
    return out


@dataclass
class AutoscalerBook(autoscale_pb2_grpc.AutoscalerServicer):
    policies: dict[str, autoscale_pb2.AutoscalePolicy] = field(default_factory=dict)
    replies: dict[str, autoscale_pb2.PolicyReply] = field(default_factory=dict)  # by idempotency key
    removals: dict[str, autoscale_pb2.RemovePolicyReply] = field(default_factory=dict)
    #: what Status answers for a group (its policy is filled in from ``policies``)
    statuses: dict[str, autoscale_pb2.AutoscaleStatus] = field(default_factory=dict)
    #: every request as it came, with its authorization and correlation id
    seen: list[tuple[str, object, str | None, str | None]] = field(default_factory=list)

    def _saw(self, method: str, request: object, context: grpc.aio.ServicerContext) -> None:
        self.seen.append(
            (
                method,
                request,
                metadata_value(context, "authorization"),
                metadata_value(context, "x-correlation-id"),
            )
        )

    def _policy(self, group: str) -> autoscale_pb2.AutoscalePolicy:
        if group not in self.policies:
            raise NotFound(f"group {group!r} is not autoscaled")
        return self.policies[group]

    @translate_errors
    async def SetPolicy(
        self, request: autoscale_pb2.SetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> autoscale_pb2.PolicyReply:
        self._saw("SetPolicy", request, context)
        key = request.options.idempotency_key
        if key and key in self.replies:
            again = autoscale_pb2.PolicyReply()
            again.CopyFrom(self.replies[key])
            again.duplicate = True
            return again
        bad = [
            FieldViolation(f"policy.metrics[{i}].backlog.stream", f"no stream {m.backlog.stream!r}")
            for i, m in enumerate(request.policy.metrics)
            if m.kind == "backlog" and m.backlog.stream not in STREAMS
        ]
        if bad:
            raise ValidationFailed(bad)
        if request.policy.group == "ghost":
            raise NotFound("no group 'ghost'")
        self.policies[request.policy.group] = _copy(request.policy)
        reply = autoscale_pb2.PolicyReply(policy=_copy(request.policy))
        if key:
            self.replies[key] = reply
        return reply

    @translate_errors
    async def GetPolicy(
        self, request: autoscale_pb2.GetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> autoscale_pb2.PolicyReply:
        self._saw("GetPolicy", request, context)
        return autoscale_pb2.PolicyReply(policy=self._policy(request.group))

    @translate_errors
    async def RemovePolicy(
        self, request: autoscale_pb2.RemovePolicyRequest, context: grpc.aio.ServicerContext
    ) -> autoscale_pb2.RemovePolicyReply:
        self._saw("RemovePolicy", request, context)
        key = request.options.idempotency_key
        if key and key in self.removals:
            return self.removals[key]
        reply = autoscale_pb2.RemovePolicyReply(removed=self.policies.pop(request.group, None) is not None)
        if key:
            self.removals[key] = reply
        return reply

    @translate_errors
    async def ListPolicies(
        self, request: autoscale_pb2.ListPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> autoscale_pb2.ListPoliciesReply:
        self._saw("ListPolicies", request, context)
        return autoscale_pb2.ListPoliciesReply(policies=[self.policies[g] for g in sorted(self.policies)])

    @translate_errors
    async def Status(
        self, request: autoscale_pb2.GetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> autoscale_pb2.AutoscaleStatus:
        self._saw("Status", request, context)
        out = autoscale_pb2.AutoscaleStatus()
        if request.group in self.statuses:
            out.CopyFrom(self.statuses[request.group])
        out.policy.CopyFrom(self._policy(request.group))
        return out


@dataclass
class FakeAutoscaler:
    book: AutoscalerBook
    server: grpc.aio.Server
    addr: str

    async def stop(self) -> None:
        await self.server.stop(grace=0)


async def start_autoscaler(book: AutoscalerBook | None = None, port: int = 0) -> FakeAutoscaler:
    """A fake autoscaler on a free port; ``book`` and ``port``: the same one again, after a stop."""
    book = book or AutoscalerBook()
    server, port = await make_server(
        f"127.0.0.1:{port}",
        [(autoscale_pb2_grpc.add_AutoscalerServicer_to_server, book, AUTOSCALER_SERVICE)],
    )
    await server.start()
    return FakeAutoscaler(book, server, f"127.0.0.1:{port}")


def sample_status(group: str) -> autoscale_pb2.AutoscaleStatus:
    """A status as the autoscaler gives it after a step up: values against targets, two decisions."""
    s = autoscale_pb2.AutoscaleStatus(current=4, ready=3, reason="cooldown until 12:04:31")
    s.latest.CopyFrom(
        autoscale_pb2.AutoscaleDecision(
            to=4,
            rule="hold",
            recommendation=5,
            need=4.4,
            metrics=[
                autoscale_pb2.MetricValue(name="cpu", value=0.83, target=0.6, recommendation=5),
                autoscale_pb2.MetricValue(name="queue", target=100, note="no data"),
            ],
        )
    )
    setattr(s.latest, "from", 4)
    s.latest.at.FromSeconds(1_800_000_100)
    for at, before, after, rule in (
        (1_800_000_090, 2, 4, "proportional cpu"),
        (1_800_000_000, 3, 2, "step limit"),
    ):
        d = autoscale_pb2.AutoscaleDecision(to=after, rule=rule)
        setattr(d, "from", before)
        d.at.FromSeconds(at)
        s.decisions.append(d)
    return s
