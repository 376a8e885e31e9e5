"""Build once, run anywhere, on the local cluster: a group whose spec names an artifact build runs
the build's command in its tasks' sandboxes, where the unpacked artifact is; a build whose digest
does not match what is fetched fails its tasks with the reason (real registry, real scheduler)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from bay.v1 import group_pb2, registry_pb2

from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import (
    SchedulerProcess,
    create_group,
    kill_tasks,
    task_readable_dir,
)
from tests.integration.test_local_fetch import make_tgz
from tests.poll import poll_until

PORTS = {"BAY_LOCAL_PORT_BEGIN": "23900", "BAY_LOCAL_PORT_END": "23949"}


@pytest.fixture
def shelf() -> Iterator[Path]:
    path = task_readable_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def sched(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> AsyncIterator[SchedulerProcess]:
    proc = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=PORTS)
    await proc.start()
    yield proc
    await proc.stop()
    kill_tasks(tmp_path)


async def register(registry: RunningRegistry, build: group_pb2.Build) -> None:
    await registry.stub.RegisterBuild(registry_pb2.RegisterBuildRequest(build=build), metadata=registry.md())


def work_of(data_dir: Path, task_id: str) -> Path:
    return next(data_dir.glob(f"local/*/sandboxes/{task_id}/work"))


def read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def artifact_build(build_id: str, tgz: Path, digest: str) -> group_pb2.Build:
    return group_pb2.Build(
        id=build_id,
        artifact=group_pb2.Artifact(uri=f"file://{tgz}", sha256=digest, extract=True),
        cmd="exec ./bin/serve",
        commit="c0ffee",
    )


async def test_a_group_of_an_artifact_build_runs_the_unpacked_files(
    registry: RunningRegistry, sched: SchedulerProcess, shelf: Path, tmp_path: Path
) -> None:
    tgz = make_tgz(
        shelf / "serve-1.tar.gz",
        {"bin/serve": b"#!/bin/sh\ncat VERSION > seen\nexec sleep 300\n", "VERSION": b"serve 1\n"},
        modes={"bin/serve": 0o755},
    )
    await register(registry, artifact_build("serve-1", tgz, hashlib.sha256(tgz.read_bytes()).hexdigest()))
    await create_group(
        registry, name="serve", build="serve-1", instances=2, resources={"cpus": 0.1, "mem": 16}
    )
    await sched.until("serve", lambda s: s.ready == 2)
    for task in await sched.tasks("serve"):
        work = work_of(tmp_path, task.id)
        assert read(work / "VERSION") == "serve 1\n"
        # what the build's command read there (once it has: the task is ready as soon as it runs)
        seen = work / "seen"
        await poll_until(lambda seen=seen: read(seen) == "serve 1\n", f"{task.id} reading VERSION", 10)


async def test_a_wrong_digest_fails_the_tasks_with_the_reason(
    registry: RunningRegistry, sched: SchedulerProcess, shelf: Path
) -> None:
    tgz = make_tgz(shelf / "serve-2.tar.gz", {"bin/serve": b"#!/bin/sh\nexec sleep 300\n"})
    wrong = "1" * 64
    await register(registry, artifact_build("serve-2", tgz, wrong))
    await create_group(
        registry, name="tampered", build="serve-2", instances=1, resources={"cpus": 0.1, "mem": 16}
    )
    tasks = await sched.until_tasks("tampered", lambda seen: any(t.state == "FAILED" for t in seen.values()))
    failed = next(t for t in tasks.values() if t.state == "FAILED")
    actual = hashlib.sha256(tgz.read_bytes()).hexdigest()
    assert failed.message.startswith("fetching the task's artifact failed: ")
    assert f"sha256 mismatch for file://{tgz}: expected {wrong}, got {actual}" in failed.message
