"""The scheduler carries out per-version targets (issue 11), with the real registry and a scheduler
process on the local backend: a spec update leaves the running version alone, SetRollout moves the
counts per version, and a version without a target goes (old-version)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from bay.v1 import registry_pb2, scheduler_pb2

from libs.spec import validate_spec
from libs.spec_pb import spec_to_pb
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import SchedulerProcess, create_group, kill_tasks, task_readable_dir
from tests.poll import poll_until

SPEC = {"name": "web", "cmd": "sleep 300", "resources": {"cpus": 0.1, "mem": 16}}


@pytest_asyncio.fixture
async def sched(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> AsyncIterator[SchedulerProcess]:
    proc = SchedulerProcess(registry, fresh_stream, tmp_path)
    await proc.start()
    yield proc
    await proc.stop()
    kill_tasks(tmp_path)


async def set_rollout(registry: RunningRegistry, *targets: tuple[int, int]) -> None:
    await registry.stub.SetRollout(
        registry_pb2.SetRolloutRequest(
            name="web",
            targets=[registry_pb2.RolloutTarget(version=v, instances=n, in_service=True) for v, n in targets],
            deployment="test",
        ),
        metadata=registry.md(),
    )


def per_version(s: scheduler_pb2.GroupStatusReply) -> dict[int, tuple[int, int, int]]:
    """version -> (target, running, ready)"""
    return {v.version: (v.instances, v.running, v.ready) for v in s.versions}


def settled(s: scheduler_pb2.GroupStatusReply, want: dict[int, tuple[int, int, int]]) -> bool:
    return per_version(s) == want and s.killing == 0 and s.staged == 0


async def test_versions_run_as_their_targets_say(registry: RunningRegistry, sched: SchedulerProcess) -> None:
    await create_group(registry, **SPEC, instances=3)
    status = await sched.until("web", lambda s: settled(s, {1: (3, 3, 3)}))
    assert (status.desired, status.ready) == (3, 3)
    first = {t.id for t in await sched.tasks("web")}

    # a new spec: a new version, and the running one runs on (the deployer would move it)
    v2 = validate_spec({**SPEC, "instances": 3, "env": {"V": "2"}})
    await registry.stub.UpdateGroup(
        registry_pb2.UpdateGroupRequest(spec=spec_to_pb(v2)), metadata=registry.md()
    )
    status = await sched.until("web", lambda s: s.version == 2)
    assert per_version(status) == {1: (3, 3, 3)}
    tasks = await sched.tasks("web")
    assert {t.id for t in tasks} == first and {t.group_version for t in tasks} == {1}

    await set_rollout(registry, (1, 2), (2, 2))
    status = await sched.until("web", lambda s: settled(s, {1: (2, 2, 2), 2: (2, 2, 2)}))
    assert (status.desired, status.running, status.ready) == (4, 4, 4)
    everything = await sched.tasks("web", terminal=True)
    # the update launched and killed nothing: all the group ever had is the three first tasks and
    # the two of v2; one v1 task went as surplus
    assert len(everything) == 5
    assert {t.id for t in everything if t.group_version == 1} == first
    v2_tasks = [t for t in everything if t.group_version == 2]
    assert len(v2_tasks) == 2 and all(t.state == "RUNNING" for t in v2_tasks)
    assert [t.kill_reason for t in everything if t.state == "KILLED"] == ["surplus"]

    await set_rollout(registry, (2, 3))
    status = await sched.until("web", lambda s: settled(s, {2: (3, 3, 3)}))
    assert (status.desired, status.ready) == (3, 3)
    live = await sched.tasks("web")
    assert len(live) == 3 and {t.group_version for t in live} == {2}
    assert {t.id for t in v2_tasks} <= {t.id for t in live}  # v2's own tasks were kept
    ended = [t for t in await sched.tasks("web", terminal=True) if t.group_version == 1]
    assert {t.id for t in ended} == first and all(t.state == "KILLED" for t in ended)
    assert sorted(t.kill_reason for t in ended) == ["old-version", "old-version", "surplus"]


async def test_a_crashing_new_version_does_not_hold_back_the_stable_one(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    await create_group(registry, **SPEC, instances=2)
    await sched.until("web", lambda s: settled(s, {1: (2, 2, 2)}))
    # v2 crashes at once, and its backoff is long: while it waits, nothing of v2 is launched
    slow = {"backoff_seconds": 300, "backoff_factor": 1.0, "max_launch_delay_seconds": 300}
    crashing = validate_spec({**SPEC, "cmd": "exit 3", "instances": 2, "backoff": slow})
    await registry.stub.UpdateGroup(
        registry_pb2.UpdateGroupRequest(spec=spec_to_pb(crashing)), metadata=registry.md()
    )
    await sched.until("web", lambda s: s.version == 2)
    await set_rollout(registry, (1, 2), (2, 1))
    status = await sched.until("web", lambda s: s.pending.backoff_failures == 1 and s.pending.count == 1)
    assert "of version 2" in status.pending.summary
    assert per_version(status) == {1: (2, 2, 2), 2: (1, 0, 0)}
    # a stable task lost now is replaced at once, the canary's backoff notwithstanding
    assert sched.stub is not None
    victim = next(t for t in await sched.tasks("web") if t.group_version == 1)
    await sched.stub.KillTask(scheduler_pb2.KillTaskRequest(id=victim.id), metadata=sched.md(), timeout=5)
    status = await sched.until(
        "web",
        lambda s: settled(s, {1: (2, 2, 2), 2: (1, 0, 0)}) and s.pending.backoff_failures == 1,
    )
    live = [t for t in await sched.tasks("web") if t.group_version == 1]
    assert len(live) == 2 and victim.id not in {t.id for t in live}
    assert status.pending.next_attempt_at > 0  # v2 still waits: v1's launch did not wait for it
    crashed = [t for t in await sched.tasks("web", terminal=True) if t.group_version == 2]
    assert len(crashed) == 1 and crashed[0].state == "FAILED"  # launched once, not again


async def test_tasks_are_checked_with_their_own_versions_check_after_a_restart(
    registry: RunningRegistry, sched: SchedulerProcess
) -> None:
    """A new spec with another health check must not be applied to the running version's tasks,
    also when a restarted scheduler watches them again (before: the group's newest check)."""
    marks = task_readable_dir()
    marks.chmod(0o777)  # the checks run as the tasks' own uids

    def spec(version: str, code: int) -> dict[str, object]:
        check = {
            "protocol": "command",
            "command": f"echo x >> {marks}/{version}; exit {code}",
            "interval_seconds": 0.5,
            "timeout_seconds": 0.5,
            "max_consecutive_failures": 1,
            "grace_period_seconds": 0,
        }
        return {**SPEC, "instances": 2, "health_check": check}

    await create_group(registry, **spec("v1", 0))
    await sched.until("web", lambda s: settled(s, {1: (2, 2, 2)}))
    v2 = validate_spec(spec("v2", 1))
    await registry.stub.UpdateGroup(
        registry_pb2.UpdateGroupRequest(spec=spec_to_pb(v2)), metadata=registry.md()
    )
    await sched.until("web", lambda s: s.version == 2)
    await sched.restart(kill=True)
    checked = (marks / "v1").stat().st_size
    await poll_until(
        lambda: (marks / "v1").stat().st_size >= checked + 8, "v1's checks after the restart", 20
    )
    status = await sched.status("web")
    assert per_version(status) == {1: (2, 2, 2)}
    assert not (marks / "v2").exists(), "a v1 task was checked with v2's check"
