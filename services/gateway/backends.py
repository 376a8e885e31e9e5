"""What the gateway talks to, opened once at start-up and shared by every request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import Engine

from libs.auth import TokenStore
from libs.clients import AutoscalerClient, DeployerClient, DnsClient, RegistryClient, SchedulerPool
from libs.eventlog import EventLog, Projection
from libs.eventlog.jetstream import event_log_for, wait_for_stream
from libs.natsconn import NatsConnection, connect
from libs.views.live import open_view
from libs.views.watch import WatchedView
from services.gateway.alertmanager import AlertmanagerClient
from services.gateway.audit.db import init_db, make_engine
from services.gateway.body import body_limit
from services.gateway.settings import GatewaySettings
from services.gateway.usage_history import UsageHistory

#: whose settings hold the peers' addresses, as the hints of "it is down" say it
GATEWAY = "the gateway"
#: the deployer's request fields as the REST API names them (the group is the path's ``name``)
DEPLOYER_FIELDS = {"group": "name", "options.idempotency_key": "Idempotency-Key"}
#: the autoscaler's request fields as the REST API names them (the body is the policy itself)
AUTOSCALER_FIELDS = {
    "group": "name",
    "policy.group": "name",
    "options.idempotency_key": "Idempotency-Key",
}


@dataclass
class Backends:
    tokens: TokenStore
    registry: RegistryClient
    nats: NatsConnection
    events: EventLog
    engine: Engine
    schedulers: SchedulerPool
    dns: DnsClient
    deployer: DeployerClient
    autoscaler: AutoscalerClient
    #: the largest request body taken (:func:`services.gateway.body.body_limit`)
    max_body_bytes: int
    #: the platform as the log says it, replayed at start-up and followed live (every cluster's
    #: tasks): what a page or a listing of the whole platform reads instead of asking each service
    live: Projection[WatchedView]
    #: set when the gateway stops: open event streams end, so their connections can close
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    #: where firing alerts are read (``BAY_ALERTMANAGER_URL``); None: no Alertmanager is configured
    alertmanager: AlertmanagerClient | None = None
    #: each group's recent CPU and memory, as its schedulers publish them (the group page's charts)
    usage: UsageHistory = field(default_factory=UsageHistory)

    @property
    def view(self) -> WatchedView:
        return self.live.state

    async def close(self) -> None:
        self.closing.set()
        await self.usage.close()
        await self.live.stop()
        await self.registry.close()
        await self.schedulers.close()
        await self.dns.close()
        await self.deployer.close()
        await self.autoscaler.close()
        if self.alertmanager is not None:
            await self.alertmanager.close()
        await self.nats.close()
        self.engine.dispose()


async def open_backends(settings: GatewaySettings, *, nats_wait_seconds: float = 30.0) -> Backends:
    conn = await connect(
        settings.nats_url,
        name="bay-gateway",
        wait_seconds=nats_wait_seconds,
        credentials=settings.nats_credentials(),
    )
    events = event_log_for(conn, settings)
    try:
        max_body = body_limit(events.max_message_bytes, settings.max_body_bytes)
        await wait_for_stream(events)  # the set-up creates it
        engine = make_engine(settings.database_url)
        await asyncio.to_thread(init_db, engine)
        live: Projection[WatchedView] = await open_view(events, "gateway", WatchedView)
        usage = UsageHistory(settings.usage_keep_seconds)
        await usage.subscribe(conn.client)
    except BaseException:
        await conn.close()
        raise
    return Backends(
        tokens=TokenStore(settings.resolved_tokens_file(), anonymous_read=settings.anonymous_read),
        registry=RegistryClient(
            settings.registry_addr,
            timeout=settings.registry_timeout_seconds,
            field_names={"idempotency_key": "Idempotency-Key"},
        ),
        nats=conn,
        events=events,
        engine=engine,
        schedulers=SchedulerPool(
            settings.schedulers, timeout=settings.scheduler_timeout_seconds, configured_by=GATEWAY
        ),
        dns=DnsClient(settings.dns_addr, timeout=settings.dns_timeout_seconds, configured_by=GATEWAY),
        deployer=DeployerClient(
            settings.deployer_addr,
            timeout=settings.deployer_timeout_seconds,
            configured_by=GATEWAY,
            field_names=DEPLOYER_FIELDS,
        ),
        autoscaler=AutoscalerClient(
            settings.autoscaler_addr,
            timeout=settings.autoscaler_timeout_seconds,
            configured_by=GATEWAY,
            field_names=AUTOSCALER_FIELDS,
        ),
        max_body_bytes=max_body,
        live=live,
        alertmanager=(
            AlertmanagerClient(settings.alertmanager_url, timeout=settings.alertmanager_timeout_seconds)
            if settings.alertmanager_url
            else None
        ),
        usage=usage,
    )
