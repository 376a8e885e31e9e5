"""The set-up: what only the platform's set-up user does on NATS, before or beside the services.

It creates (or brings up to date) the event stream and the scheduler lease bucket. Services only
check that the stream is there (:func:`libs.eventlog.jetstream.wait_for_stream`): their NATS users
may not create, update or delete a stream (:mod:`libs.natsperms`). ``bay up`` runs this as soon as
its nats-server answers; with ``BAY_NATS_URL`` (docker-compose, an operator's NATS), ``bay nats
setup`` does, with the set-up credential.
"""

from __future__ import annotations

from collections.abc import Iterable

import nats.errors
import nats.js.errors

from libs.errors import Unavailable
from libs.eventlog.jetstream import ensure_stream_when_ready, event_log_for
from libs.lease import bucket_config, bucket_name
from libs.natsconn import NatsConnection
from libs.settings import CommonSettings

DEFAULT_LEASE_SECONDS = 10.0


async def set_up(
    conn: NatsConnection,
    settings: CommonSettings,
    lease_seconds: Iterable[float] = (DEFAULT_LEASE_SECONDS,),
    *,
    wait_seconds: float = 60.0,
) -> None:
    """Create the stream (append-only, see ``ensure_stream``) and a lease bucket per TTL."""
    await ensure_stream_when_ready(event_log_for(conn, settings), wait_seconds)
    js = conn.client.jetstream(timeout=settings.request_timeout_seconds)
    for ttl in sorted(set(lease_seconds)):
        try:
            try:
                await js.key_value(bucket_name(ttl))
            except nats.js.errors.BucketNotFoundError:
                await js.create_key_value(bucket_config(ttl, settings.stream_replicas))
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise Unavailable(
                f"JetStream did not answer creating the lease bucket {bucket_name(ttl)}"
            ) from exc
