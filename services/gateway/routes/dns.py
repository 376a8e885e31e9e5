"""``/v1/dns``: what the DNS service answers for a service and why a task is not in it, and its
counters. For people debugging discovery; clients resolve names on the DNS port itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from libs.errors import NotFound
from services.gateway.adapters import dns_lookup_from_pb, dns_stats_from_pb
from services.gateway.deps import Dns, Viewer
from services.gateway.models import DnsLookup, DnsStats

router = APIRouter(prefix="/v1/dns", tags=["dns"])


@router.get("")
async def dns_stats(_: Viewer, dns: Dns) -> DnsStats:
    """The zone, what it holds (services, groups, tasks in the answers) and the query counters."""
    return dns_stats_from_pb(await dns.stats())


@router.get("/{service}")
async def dns_lookup(
    service: str,
    _: Viewer,
    dns: Dns,
    cluster: Annotated[str, Query(description="only this cluster's names and tasks")] = "",
) -> DnsLookup:
    """Every name the service answers under, the records the DNS service would answer now, and each
    of its tasks with whether it is answered and, if not, why (not running, health not checked
    yet, unhealthy, being killed...). 404 when no group registers the service (in that cluster)."""
    reply = await dns.lookup(service, cluster)
    if not reply.exists:
        where = f" in cluster {cluster!r}" if cluster else ""
        raise NotFound(
            f"no group registers service {service!r}{where}",
            hint="a group's service is its `service` field, or its name; `bay get groups` lists both",
        )
    return dns_lookup_from_pb(reply, service, cluster)
