"""The scheduler process: ``python -m services.scheduler``, one per cluster (``BAY_CLUSTER``)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from bay.v1 import scheduler_pb2, scheduler_pb2_grpc, task_pb2

from libs.auth import TokenStore
from libs.envelope import make_envelope
from libs.errors import FieldViolation, Unavailable, ValidationFailed
from libs.eventlog import FileSnapshotStore, Projection
from libs.eventlog.jetstream import ensure_stream_when_ready, event_log_for
from libs.grpcutil import make_server
from libs.lease import Lease
from libs.natsconn import connect
from libs.runtime import run_service
from libs.telemetry import setup_telemetry
from services.scheduler import codec, snapshot
from services.scheduler.appender import Appender
from services.scheduler.backends.local import LocalBackend, LocalBackendConfig
from services.scheduler.grpc_api import SchedulerServicer
from services.scheduler.ports import ClusterBackend
from services.scheduler.service import Scheduler, SchedulerConfig
from services.scheduler.settings import SchedulerSettings
from services.scheduler.state import SchedulerState
from services.scheduler.usage import UsagePublisher

log = logging.getLogger("bay.scheduler")

SERVICE_NAME = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name
REGISTRATION_LOG_EVERY = 10.0


async def cluster_backend(
    settings: SchedulerSettings, projection: Projection[SchedulerState], stop: asyncio.Event
) -> tuple[str, str] | None:
    """(backend kind, address) from the settings, else from the cluster's registration (waited for:
    under ``bay up`` the scheduler may start before the cluster is registered). None if stopped."""
    if settings.backend:
        return settings.backend, settings.mesos_master
    said = 0.0
    changed = asyncio.Event()
    projection.state.on_change = lambda group, decisive: changed.set()
    while not stop.is_set():
        found = projection.state.clusters.get(settings.cluster)
        if found is not None:
            kind, address = found
            return kind, settings.mesos_master or address
        if time.monotonic() - said > REGISTRATION_LOG_EVERY:
            said = time.monotonic()
            log.warning(
                "cluster %r is not registered yet; waiting (register it: bay cluster register, or set "
                "BAY_BACKEND)", settings.cluster,
            )  # fmt: skip
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), 1.0)
        except TimeoutError:
            pass
    return None


def local_backend(settings: SchedulerSettings) -> LocalBackend:
    work_dir = settings.local_work_dir or settings.data_dir / "local" / settings.cluster
    cpus = settings.local_cpus or float(os.cpu_count() or 1)
    mem = settings.local_mem or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    return LocalBackend(
        LocalBackendConfig(
            work_dir=work_dir.resolve(),
            hostname=settings.local_hostname or socket.gethostname(),
            labels=dict(settings.local_labels),
            cpus=cpus,
            mem=mem,
            disk=settings.local_disk,
            port_begin=settings.local_port_begin,
            port_end=settings.local_port_end,
            cgroups=settings.local_cgroups,
        )
    )


def mesos_backend(
    settings: SchedulerSettings,
    address: str,
    state: SchedulerState,
    appender: Appender,
    wake: list[Scheduler],
) -> ClusterBackend:
    from services.scheduler.backends.mesos import MesosBackend, MesosBackendConfig

    if not address:
        raise ValidationFailed(
            [FieldViolation("mesos_master", "the cluster has no master address: set BAY_MESOS_MASTER")]
        )

    async def remember(framework_id: str) -> None:
        if framework_id == state.framework_id:
            return
        env = make_envelope(
            task_pb2.FrameworkRegistered(framework_id=framework_id, master=address),
            aggregate_type=codec.FRAMEWORK,
            aggregate_id=settings.cluster,
            aggregate_version=0,
            meta=Scheduler.default_meta(),
        )
        await appender.append(codec.framework_subject(settings.cluster), env)
        log.info("framework id %s stored for cluster %s", framework_id, settings.cluster)

    def offers() -> None:
        for s in wake:
            s.wake()

    config = MesosBackendConfig(
        master=address,
        cluster=settings.cluster,
        framework_id=state.framework_id or None,
    )
    return MesosBackend(config, on_framework_id=remember, on_capacity=offers)


async def serve(settings: SchedulerSettings, stop: asyncio.Event) -> None:
    setup_telemetry(f"bay-scheduler-{settings.cluster}")
    conn = await connect(settings.nats_url, name=f"bay-scheduler-{settings.cluster}")
    event_log = event_log_for(conn, settings)
    await ensure_stream_when_ready(event_log)
    lost: list[str] = []

    def lease_lost(why: str) -> None:
        log.error("%s: stopping (tasks keep running; the new holder re-adopts them)", why)
        lost.append(why)
        stop.set()

    # one scheduler per cluster: a second one waits here until the first is gone
    lease = Lease(conn, f"scheduler.{settings.cluster}", ttl=settings.lease_seconds, on_lost=lease_lost)
    if not await lease.acquire(stop):
        await conn.close()
        return
    projection = Projection(
        name=f"scheduler-{settings.cluster}",
        log=event_log,
        initial=lambda: SchedulerState(settings.cluster),
        apply=SchedulerState.fold,
        snapshots=FileSnapshotStore(settings.data_dir / "snapshots"),
        encode=snapshot.encode,
        decode=lambda data: snapshot.decode(data, settings.cluster),
        snapshot_every=settings.snapshot_every,
    )
    await projection.start()
    found = await cluster_backend(settings, projection, stop)
    if found is None:
        await projection.stop(snapshot=False)
        await lease.release()
        await conn.close()
        return
    kind, address = found
    appender = Appender(event_log)
    wake: list[Scheduler] = []
    backend: ClusterBackend
    if kind == "local":
        backend = local_backend(settings)
    elif kind == "mesos":
        backend = mesos_backend(settings, address, projection.state, appender, wake)
    else:
        raise ValidationFailed([FieldViolation("backend", f"unknown backend {kind!r}: local or mesos")])
    scheduler = Scheduler(
        SchedulerConfig(
            cluster=settings.cluster,
            kill_grace_seconds=settings.kill_grace_seconds,
            launch_limit=settings.launch_limit,
            reconcile_interval_seconds=settings.reconcile_interval_seconds,
            local_address=settings.local_address,
        ),
        backend,
        projection,
        appender,
    )
    wake.append(scheduler)
    await scheduler.start()
    tokens = TokenStore(settings.resolved_tokens_file(), anonymous_read=settings.anonymous_read)
    server, port = await make_server(
        settings.scheduler_listen,
        [
            (
                scheduler_pb2_grpc.add_SchedulerServicer_to_server,
                SchedulerServicer(scheduler, tokens),
                SERVICE_NAME,
            )
        ],
    )
    await server.start()
    usage = UsagePublisher(
        conn.client,
        backend.usage,
        lambda task_id: task.group if (task := projection.state.tasks.get(task_id)) else None,
        settings.cluster,
        interval=settings.usage_interval_seconds,
    )
    usage.start()
    log.info(
        "scheduler for cluster %s (%s backend) listening on %s (port %d)",
        settings.cluster, kind, settings.scheduler_listen, port,
    )  # fmt: skip
    await stop.wait()
    log.info("scheduler stopping; tasks keep running")
    await usage.stop()
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
