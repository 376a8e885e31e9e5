"""The DNS service's gRPC API (protos/bay/v1/dns.proto): the debug listing and counters."""

from __future__ import annotations

import grpc
from bay.v1 import dns_pb2, dns_pb2_grpc

from libs.auth import TokenStore
from libs.errors import FieldViolation, ValidationFailed
from libs.eventlog import Projection
from libs.grpcutil import metadata_value, translate_errors
from services.dns.listing import service_listing
from services.dns.model import DnsState
from services.dns.responder import Responder


class DnsServicer(dns_pb2_grpc.DnsServicer):
    def __init__(self, responder: Responder, projection: Projection[DnsState], tokens: TokenStore) -> None:
        self.responder = responder
        self.projection = projection
        self.tokens = tokens

    def _viewer(self, context: grpc.aio.ServicerContext) -> None:
        self.tokens.authenticate(metadata_value(context, "authorization"), needed="viewer")

    @translate_errors
    async def Lookup(self, request, context):  # type: ignore[no-untyped-def]
        self._viewer(context)
        if not request.service:
            raise ValidationFailed([FieldViolation("service", "name the service to look up")])
        zone = self.responder.zone
        found = service_listing(zone, request.service, request.cluster)
        reply = dns_pb2.DnsLookupReply(zone=zone.origin, exists=found.exists, names=found.names)
        ttl = zone.config.ttl
        for name, rtype, data, task_id in found.records:
            reply.records.add(name=name, type=rtype, ttl=ttl, data=data, task_id=task_id)
        for task_id, group, cluster, state, why, addresses, ports in found.tasks:
            reply.tasks.add(
                id=task_id, group=group, cluster=cluster, state=state, answered=not why, reason=why,
                addresses=addresses, ports=ports,
            )  # fmt: skip
        for name, cluster, share, checked in found.groups:
            reply.groups.add(name=name, cluster=cluster, share=share, health_checked=checked)
        return reply

    @translate_errors
    async def Stats(self, request, context):  # type: ignore[no-untyped-def]
        self._viewer(context)
        zone = self.responder.zone
        st = zone.state
        c = self.responder.counters
        forwarder = self.responder.forwarder
        return dns_pb2.DnsStatsReply(
            zone=zone.origin,
            ttl=zone.config.ttl,
            services=len(st.service_groups),
            groups=len(st.groups),
            tasks=len(st.tasks),
            ready_tasks=sum(1 for t in st.tasks.values() if st.is_ready(t)),
            sequence=self.projection.sequence,
            queries=self.responder.queries + c.slow,
            cache_hits=self.responder.queries - self.responder.misses,
            cached_answers=len(zone.cache),
            forwarded=c.forwarded,
            refused=c.refused,
            formerr=c.formerr,
            upstreams=[f"{h}:{p}" for h, p in forwarder.upstreams] if forwarder else [],
        )
