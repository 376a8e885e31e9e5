"""A requested kill is carried out until the task has ended: after the scheduler was SIGKILLed right
after storing it, after a round that failed once its kills were stored (NATS stalled), and after
another scheduler took the lease over. Real scheduler processes, real task processes, real NATS."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from libs.eventlog.jetstream import JetStreamEventLog
from libs.eventlog.port import StreamSettings
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.natsconn import connect
from tests import natsauth
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import (
    SchedulerProcess,
    create_group,
    scale,
)
from tests.integration.stall_proxy import StallProxy
from tests.integration.test_scheduler_local import live_task_pids, port_range
from tests.poll import poll_until

SLEEPER = {"cmd": "sleep 300", "resources": {"cpus": 0.1, "mem": 16}}


async def store_kill_as_the_scheduler_does(
    registry: RunningRegistry, task_id: str, reason: str, cluster: str = "local"
) -> None:
    """Append the TaskKillRequested a scheduler stores before it tells the backend (as the scheduler's
    own writer makes it: the task's next version, the scheduler as actor, on the scheduler's own
    NATS user, the only one that may write the cluster's tasks)."""
    subject = subjects.task(cluster, task_id)
    history = [r async for r in registry.log.read(1, subject_filter=subject)]
    envelope = make_envelope(
        to_pb(m.TaskKillRequested(task_id, reason, time.time())),
        aggregate_type=subjects.TASK,
        aggregate_id=task_id,
        aggregate_version=history[-1].envelope.aggregate_version + 1,
        meta=EventMeta.command("scheduler"),
    )
    creds = natsauth.credentials(f"scheduler-{cluster}")
    conn = await connect(
        ",".join(registry.conn.urls), name="test-scheduler", wait_seconds=5, credentials=creds
    )
    try:
        await JetStreamEventLog(conn, StreamSettings(), timeout=2.0).append(subject, envelope)
    finally:
        await conn.close()


def ended_by_kill(task_id: str, reason: str):  # type: ignore[no-untyped-def]
    return lambda ts: task_id in ts and ts[task_id].state == "KILLED" and ts[task_id].kill_reason == reason


async def test_a_kill_stored_just_before_a_sigkill_is_carried_out_after_the_restart(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    sched = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=port_range())
    await sched.start()
    try:
        await create_group(registry, name="web", instances=2, **SLEEPER)
        await sched.until("web", lambda s: s.ready == 2)
        young, old = sorted(await sched.tasks("web"), key=lambda t: t.launched_at, reverse=True)
        sched.sigkill()
        # what the scheduler stored for a scale to 1 before it was killed, before it killed the task
        await scale(registry, "web", 1)
        await store_kill_as_the_scheduler_does(registry, young.id, "surplus")
        await sched.restart()
        await sched.until_tasks("web", ended_by_kill(young.id, "surplus"), timeout=20)
        await sched.until("web", lambda s: s.ready == 1 and s.killing == 0)
        assert set(live_task_pids(tmp_path)) == {old.id}
    finally:
        await sched.stop()


async def test_a_round_that_failed_after_storing_its_kills_has_them_carried_out(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    proxy = await StallProxy(fresh_stream).start()
    # the lease outlives the stall: this is about the round, not about losing the lease
    env = {**port_range(), "BAY_LEASE_SECONDS": "120"}
    sched = SchedulerProcess(registry, proxy.url, tmp_path, extra_env=env)
    await sched.start()
    try:
        await create_group(registry, name="web", instances=3, **SLEEPER)
        await sched.until("web", lambda s: s.ready == 3)
        # the scheduler gets the scale, then NATS's answers stall: its kills are stored, but their
        # acknowledgements never come, the round fails, and no kill is sent with it
        proxy.stall_after(b"bay.ev.group.web")
        await scale(registry, "web", 1)
        await poll_until(lambda: "scheduling round failed" in sched.log_text(), "a failed round", 40)
        kills = {
            r.subject
            async for r in registry.log.read(1, subject_filter="bay.ev.task.local.>")
            if r.envelope.type == "TaskKillRequested"
        }
        assert len(kills) == 2, kills  # both stored, by the round that failed
        proxy.resume()
        ended = await sched.until_tasks(
            "web", lambda ts: sum(t.state == "KILLED" for t in ts.values()) == 2, timeout=30
        )
        (left,) = [t for t in ended.values() if t.state == "RUNNING"]
        assert all(t.kill_reason == "surplus" for t in ended.values() if t.state == "KILLED")
        assert set(live_task_pids(tmp_path)) == {left.id}
    finally:
        await sched.stop()
        await proxy.stop()


async def test_a_kill_its_scheduler_never_sent_is_sent_by_the_next_holder_of_the_lease(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> None:
    env = {**port_range(), "BAY_LEASE_SECONDS": "2"}
    first = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=env, log_name="first")
    second = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=env, log_name="second")
    await first.start()
    try:
        await create_group(registry, name="web", instances=2, **SLEEPER)
        await first.until("web", lambda s: s.ready == 2)
        young, old = sorted(await first.tasks("web"), key=lambda t: t.launched_at, reverse=True)
        assert first.proc is not None
        first.proc.send_signal(signal.SIGSTOP)  # stalled (a long pause) between storing and killing
        await scale(registry, "web", 1)
        await store_kill_as_the_scheduler_does(registry, young.id, "surplus")
        await second.start(wait=False)
        await second.until_serving()  # once the first one's lease expired
        await second.until_tasks("web", ended_by_kill(young.id, "surplus"), timeout=20)
        first.proc.send_signal(signal.SIGCONT)
        await poll_until(lambda: first.proc is not None and first.proc.poll() is not None,
                         "the first scheduler stopping: its lease is another's", 20)  # fmt: skip
        assert "taken over by another instance" in first.log_text()
        await second.until("web", lambda s: s.ready == 1 and s.killing == 0)
        assert set(live_task_pids(tmp_path)) == {old.id}
    finally:
        await first.stop()
        await second.stop()
