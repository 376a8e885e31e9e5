"""Artifacts on the Mesos backend: CommandInfo.uris from LaunchSpec.fetch (never cached), the
simulator's agent fetching them into the sandbox, and the digest check Bay prefixes to the command
failing the task with the reason (Mesos' fetcher checks none). The prefix is also run by a real
shell here, so what the simulator plays is what ``/bin/sh`` does."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.scheduler.backends.mesos.taskinfo import command_info, digest_check
from services.scheduler.ports import Artifact, TaskState
from tests.contract.test_backend_contract import hosts_with, launch_spec
from tests.integration.test_local_fetch import make_tgz
from tests.integration.test_mesos_backend import Framework, start_framework
from tests.mesos_sim import MesosMasterSim, SimConfig


@pytest.fixture
async def sim() -> AsyncIterator[MesosMasterSim]:
    s = MesosMasterSim(agents=1, config=SimConfig(update_retry_seconds=0.2, play_scripts=True))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def mesos(sim: MesosMasterSim) -> AsyncIterator[Framework]:
    fw = await start_framework(sim)
    yield fw
    await fw.backend.stop()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_artifacts_become_uncached_uris_and_a_checked_command() -> None:
    art = Artifact("https://artifacts.local/app-1.tar.gz?token=x", "a" * 64, extract=True)
    spec = launch_spec("app.1", "./bin/app", fetch=(art,))
    info = command_info(spec, {})
    assert info["uris"] == [
        {
            "value": art.uri,
            "extract": True,
            "executable": False,
            "cache": False,
            "output_file": "app-1.tar.gz",
        }
    ]
    assert info["shell"] is True and info["value"] == digest_check(art) + "./bin/app"
    assert "uris" not in command_info(launch_spec("plain.1", "./bin/app"), {})


@pytest.mark.parametrize("good", [True, False])
def test_the_check_is_plain_shell(tmp_path: Path, good: bool) -> None:
    (tmp_path / "app.tgz").write_bytes(b"the build")
    want = hashlib.sha256(b"the build").hexdigest() if good else "0" * 64
    art = Artifact('file:///srv/"$x`/app.tgz', want)  # quotes and $ in the URI stay text
    run = subprocess.run(
        ["/bin/sh", "-c", digest_check(art) + "echo ran"], cwd=tmp_path, capture_output=True, text=True
    )
    if good:
        assert (run.returncode, run.stdout, run.stderr) == (0, "ran\n", "")
    else:
        actual = hashlib.sha256(b"the build").hexdigest()
        assert run.returncode == 86 and run.stdout == ""
        assert run.stderr == f"bay fetch: sha256 mismatch for {art.uri}: expected {want}, got {actual}\n"


async def test_the_agent_fetches_and_the_command_runs(
    sim: MesosMasterSim, mesos: Framework, tmp_path: Path
) -> None:
    tgz = make_tgz(tmp_path / "app-1.tar.gz", {"bin/app": b"#!/bin/sh\n", "VERSION": b"1\n"})
    art = Artifact(f"file://{tgz}", digest(tgz), extract=True)
    host = (await hosts_with(mesos.backend, 0.1))[0]
    await mesos.launch_on(host, launch_spec("app.1", "echo started; exit 0", fetch=(art,)))
    await mesos.sink.wait_for("app.1", TaskState.FINISHED)
    box = sim.sandbox_of("app.1")
    assert box.files["VERSION"] == b"1\n" and "app-1.tar.gz" in box.files
    assert "bin/app" in box.files
    assert b"started\n" in box.stdout


async def test_a_wrong_digest_fails_the_task_naming_it(
    sim: MesosMasterSim, mesos: Framework, tmp_path: Path
) -> None:
    tgz = make_tgz(tmp_path / "app-2.tar.gz", {"VERSION": b"2\n"})
    wrong = "f" * 64
    art = Artifact(f"file://{tgz}", wrong, extract=True)
    host = (await hosts_with(mesos.backend, 0.1))[0]
    await mesos.launch_on(host, launch_spec("app.2", "echo started; exit 0", fetch=(art,)))
    failed = await mesos.sink.wait_for("app.2", TaskState.FAILED)
    assert failed.exit_code == 86
    assert (
        f"bay fetch: sha256 mismatch for file://{tgz}: expected {wrong}, got {digest(tgz)}" in failed.message
    )
    assert b"started" not in sim.sandbox_of("app.2").stdout  # the command never ran


async def test_an_artifact_the_agent_cannot_fetch_fails_the_launch(
    sim: MesosMasterSim, mesos: Framework, tmp_path: Path
) -> None:
    art = Artifact(f"file://{tmp_path}/missing.tar.gz", "0" * 64, extract=True)
    host = (await hosts_with(mesos.backend, 0.1))[0]
    await mesos.launch_on(host, launch_spec("app.3", "exit 0", fetch=(art,)))
    failed = await mesos.sink.wait_for("app.3", TaskState.FAILED)
    assert failed.reason == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "Failed to fetch all URIs" in failed.message and "missing.tar.gz" in failed.message
