"""The one place where a scheduler is wired: its state, backend, appender and service layer."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from pathlib import Path

from libs.errors import FieldViolation, ValidationFailed
from libs.eventlog import EventLog, FileSnapshotStore, Projection
from libs.events.model import FrameworkRegistered
from services.scheduler.adapters import snapshot
from services.scheduler.adapters.appender import Appender
from services.scheduler.backends.local import LocalBackend, LocalBackendConfig
from services.scheduler.domain.state import SchedulerState
from services.scheduler.ports import ClusterBackend
from services.scheduler.service_layer.scheduler import Scheduler, SchedulerConfig
from services.scheduler.settings import SchedulerSettings

log = logging.getLogger("bay.scheduler")

REGISTRATION_LOG_EVERY = 10.0


def projection_of(settings: SchedulerSettings, event_log: EventLog) -> Projection[SchedulerState]:
    return Projection(
        name=f"scheduler-{settings.cluster}",
        log=event_log,
        initial=lambda: SchedulerState(settings.cluster),
        apply=SchedulerState.fold,  # type: ignore[arg-type]
        snapshots=FileSnapshotStore(settings.data_dir / "snapshots"),
        encode=snapshot.encode,
        decode=lambda data: snapshot.decode(data, settings.cluster),
        snapshot_every=settings.snapshot_every,
    )


async def cluster_backend(
    settings: SchedulerSettings, state: SchedulerState, stop: asyncio.Event
) -> tuple[str, str] | None:
    """(backend kind, address) from the settings, else from the cluster's registration (waited for:
    under ``bay up`` the scheduler may start before the cluster is registered). None if stopped."""
    if settings.backend:
        return settings.backend, settings.mesos_master
    said = 0.0
    changed = asyncio.Event()
    unlisten = state.listen(lambda group, decisive: changed.set())
    try:
        while not stop.is_set():
            found = state.clusters.get(settings.cluster)
            if found is not None:
                return found.backend, settings.mesos_master or found.address
            if time.monotonic() - said > REGISTRATION_LOG_EVERY:
                said = time.monotonic()
                log.warning(
                    "cluster %r is not registered yet; waiting (register it: bay cluster register, or "
                    "set BAY_BACKEND)", settings.cluster,
                )  # fmt: skip
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), 1.0)
            except TimeoutError:
                pass
        return None
    finally:
        unlisten()


def local_backend(settings: SchedulerSettings) -> LocalBackend:
    work_dir = settings.local_work_dir or settings.data_dir / "local" / settings.cluster
    if settings.local_work_dir is None:  # searchable, not readable: tasks reach their sandbox by path
        (settings.data_dir / "local").mkdir(mode=0o711, parents=True, exist_ok=True)
        (settings.data_dir / "local").chmod(0o711)
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
            task_nice=settings.local_task_nice,
            address=settings.local_address,
            task_user=settings.task_user,
            task_uids=settings.task_uid_range,
            uid_claims_dir=Path(settings.task_uid_claims) if settings.task_uid_claims else None,
            fetch_timeout_seconds=settings.fetch_timeout_seconds,
            fetch_max_bytes=settings.fetch_max_bytes,
            fetch_python=settings.fetch_python,
            log_max_bytes=settings.log_max_bytes,
            log_keep=settings.log_keep,
        )
    )


def mesos_backend(
    settings: SchedulerSettings, address: str, state: SchedulerState, scheduler: list[Scheduler]
) -> ClusterBackend:
    from services.scheduler.backends.mesos import MesosBackend, MesosBackendConfig

    if not address:
        raise ValidationFailed(
            [FieldViolation("mesos_master", "the cluster has no master address: set BAY_MESOS_MASTER")]
        )

    async def remember(framework_id: str) -> None:
        if framework_id == state.framework_id:
            return
        await scheduler[0].store([FrameworkRegistered(framework_id, address, time.time())])
        log.info("framework id %s stored for cluster %s", framework_id, settings.cluster)

    def offers() -> None:
        for s in scheduler:
            s.wake()

    config = MesosBackendConfig(
        master=address, cluster=settings.cluster, framework_id=state.framework_id or None
    )
    return MesosBackend(config, on_framework_id=remember, on_capacity=offers)


def build_scheduler(
    settings: SchedulerSettings,
    kind: str,
    address: str,
    projection: Projection[SchedulerState],
    appender: Appender,
) -> Scheduler:
    """The scheduler of ``settings.cluster`` on a ``kind`` backend (its projection current)."""
    late: list[Scheduler] = []  # the Mesos backend's callbacks reach the scheduler built after it
    backend: ClusterBackend
    if kind == "local":
        backend = local_backend(settings)
    elif kind == "mesos":
        backend = mesos_backend(settings, address, projection.state, late)
    else:
        raise ValidationFailed([FieldViolation("backend", f"unknown backend {kind!r}: local or mesos")])
    scheduler = Scheduler(
        SchedulerConfig(
            cluster=settings.cluster,
            kill_grace_seconds=settings.kill_grace_seconds,
            drain_seconds=settings.drain_seconds,
            launch_limit=settings.launch_limit,
            reconcile_interval_seconds=settings.reconcile_interval_seconds,
            health_start_interval_seconds=settings.health_start_interval_seconds,
        ),
        backend,
        projection,
        appender,
    )
    late.append(scheduler)
    return scheduler
