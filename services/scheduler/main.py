"""The scheduler process: ``python -m services.scheduler``, one per cluster (``BAY_CLUSTER``)."""

from __future__ import annotations

import asyncio
import logging
import signal

from bay.v1 import scheduler_pb2, scheduler_pb2_grpc

from libs.auth import TokenStore
from libs.errors import Unavailable
from libs.eventlog.jetstream import event_log_for, wait_for_stream
from libs.foldstatus import fold_status
from libs.grpcutil import make_server
from libs.lease import Lease
from libs.metrics import PROCESS
from libs.natsconn import connect
from libs.runtime import run_service
from libs.telemetry import setup_telemetry
from services.scheduler.adapters.appender import Appender
from services.scheduler.adapters.metrics import SchedulerMetrics
from services.scheduler.adapters.usage import DEFAULT_INTERVAL, UsagePublisher
from services.scheduler.bootstrap import build_scheduler, cluster_backend, projection_of
from services.scheduler.entrypoints.grpc_api import SchedulerServicer
from services.scheduler.settings import SchedulerSettings

log = logging.getLogger("bay.scheduler")

SERVICE_NAME = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name


async def serve(settings: SchedulerSettings, stop: asyncio.Event) -> None:
    # SIGTERM stops the scheduler and leaves its tasks running (a restarted one re-adopts them);
    # SIGUSR1 (``bay up`` stopping without --keep-tasks) ends the cluster's tasks first.
    ending = asyncio.Event()

    def end_tasks_and_stop() -> None:
        ending.set()
        stop.set()

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, end_tasks_and_stop)
    setup_telemetry(f"bay-scheduler-{settings.cluster}")
    conn = await connect(
        settings.nats_url, name=f"bay-scheduler-{settings.cluster}", credentials=settings.nats_credentials()
    )
    event_log = event_log_for(conn, settings)
    await wait_for_stream(event_log)
    lost: list[str] = []

    def lease_lost(why: str) -> None:
        log.error("%s: stopping (tasks keep running; the new holder re-adopts them)", why)
        lost.append(why)
        stop.set()

    # one scheduler per cluster: a second one waits here until the first is gone
    lease = Lease(
        conn,
        f"scheduler.{settings.cluster}",
        ttl=settings.lease_seconds,
        on_lost=lease_lost,
        replicas=settings.stream_replicas,
    )
    if not await lease.acquire(stop):
        await conn.close()
        return
    projection = projection_of(settings, event_log)
    await projection.start()
    metrics = SchedulerMetrics(settings.cluster, lambda: projection.state, PROCESS.registry)
    projection.state.task_observers.append(metrics.task_changed)  # live from here: no replay counted
    found = await cluster_backend(settings, projection.state, stop)
    if found is None:
        await projection.stop(snapshot=False)
        await lease.release()
        await conn.close()
        return
    kind, address = found
    appender = Appender(event_log)
    scheduler = build_scheduler(settings, kind, address, projection, appender)
    scheduler.on_round = metrics.round_done
    await scheduler.start()
    tokens = TokenStore(settings.resolved_tokens_file(), anonymous_read=settings.anonymous_read)
    server, port = await make_server(
        settings.scheduler_listen,
        [
            (
                scheduler_pb2_grpc.add_SchedulerServicer_to_server,
                SchedulerServicer(scheduler, tokens),
                SERVICE_NAME,
            ),
            fold_status("scheduler", projection),
        ],
        nats=conn,
    )
    await server.start()
    usage = UsagePublisher(
        conn.client,
        scheduler.backend.usage,
        lambda task_id: task.group if (task := projection.state.tasks.get(task_id)) else None,
        settings.cluster,
        interval=settings.usage_interval_seconds or DEFAULT_INTERVAL.get(kind, 1.0),
    )
    usage.start()
    log.info(
        "scheduler for cluster %s (%s backend) listening on %s (port %d)",
        settings.cluster, kind, settings.scheduler_listen, port,
    )  # fmt: skip
    await stop.wait()
    await usage.stop()
    if ending.is_set() and not lost:
        await scheduler.stop_rounds()
        ended = await scheduler.end_tasks()
        log.info("scheduler stopping; its %d task(s) ended", ended)
    else:
        log.info("scheduler stopping; tasks keep running")
    await server.stop(grace=2)
    await scheduler.stop()
    await projection.stop(snapshot=True)
    if not lost:
        await lease.release()
    await conn.close()
    if lost:
        raise Unavailable(lost[0], hint="another scheduler of this cluster holds its lease")


def main() -> None:
    run_service("scheduler", SchedulerSettings, serve)


if __name__ == "__main__":
    main()
