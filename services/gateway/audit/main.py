"""The audit writer process: ``python -m services.gateway.audit``."""

from __future__ import annotations

import asyncio
import logging

from libs.eventlog.jetstream import event_log_for, wait_for_stream
from libs.natsconn import connect
from libs.runtime import run_service
from libs.telemetry import setup_telemetry
from services.gateway.audit.db import init_db, make_engine
from services.gateway.audit.settings import AuditSettings
from services.gateway.audit.sqlstore import SqlAuditStore
from services.gateway.audit.writer import AuditWriter

log = logging.getLogger("bay.audit")


async def serve(settings: AuditSettings, stop: asyncio.Event) -> None:
    setup_telemetry("bay-audit")
    engine = make_engine(settings.database_url)
    log.info("audit database: %s", engine.url.render_as_string(hide_password=True))
    while not stop.is_set():
        try:
            await asyncio.to_thread(init_db, engine)
            break
        except Exception as exc:  # the database may come up after us
            log.warning("cannot create the audit tables (%s); retrying", exc)
            try:
                await asyncio.wait_for(stop.wait(), settings.audit_retry_seconds)
            except TimeoutError:
                pass
    conn = await connect(settings.nats_url, name="bay-audit", credentials=settings.nats_credentials())
    try:
        event_log = event_log_for(conn, settings)
        await wait_for_stream(event_log)  # the set-up creates it; the audit may start first
        writer = AuditWriter(
            conn,
            SqlAuditStore(engine, settings.audit_durable),
            stream=settings.stream,
            durable=settings.audit_durable,
            batch_size=settings.audit_batch_size,
            fetch_timeout=settings.audit_fetch_timeout_seconds,
            retry_seconds=settings.audit_retry_seconds,
        )
        await writer.run(stop)
    finally:
        await conn.close()
        engine.dispose()


def main() -> None:
    run_service("audit", AuditSettings, serve)


if __name__ == "__main__":
    main()
