"""The simulator's agents running tasks for real (``SimConfig(run_commands=True)``): processes in
sandboxes, fetched URIs, exits, kills, the agent's own health checks, and no process left behind."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import signal
import sys
import tarfile
import threading
import zipfile
from collections.abc import AsyncIterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mesos_sim import MesosMasterSim, SimConfig
from tests.mesos_sim.client import Bridge, start_driver, stop_driver, task_info
from tests.poll import poll_until
from tests.tasks import TASK_PYTHON

Json = dict[str, Any]
DEADLINE = 15.0
ROOT = Path(__file__).resolve().parents[2]  # the checkout: where `python -m tests.mesos_sim` is found


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[MesosMasterSim]:
    s = MesosMasterSim(agents=2, config=SimConfig(run_commands=True, work_dir=tmp_path / "agents"))
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def mesos(sim: MesosMasterSim) -> AsyncIterator[tuple[Any, Bridge]]:
    driver, bridge = await start_driver(sim.address)
    try:
        yield driver, bridge
    finally:
        await stop_driver(driver)


def first_port(offer: Json) -> int:
    ports = next(r for r in offer["resources"] if r["name"] == "ports")
    return int(ports["ranges"]["range"][0]["begin"])


def agent_url(offer: Json) -> str:
    address = offer["url"]["address"]
    return f"http://{address['ip']}:{address['port']}"


def command_task(task_id: str, command: str, *, env: dict[str, str] | None = None,
                 ports: list[int] | None = None) -> Json:  # fmt: skip
    """A shell command task; its agent id is the offer's it is launched with."""
    info = task_info(task_id, "", ports=ports)
    variables = [{"name": k, "value": v} for k, v in (env or {}).items()]
    info["command"] = {"shell": True, "value": command, "environment": {"variables": variables}}
    return info


async def launch(driver: Any, bridge: Bridge, *tasks: Json) -> Json:
    """Launch on the first offer; returns that offer."""
    offer = (await bridge.next("offers"))[0]
    fixed = [{**t, "agent_id": offer["agent_id"]} for t in tasks]
    await asyncio.to_thread(driver.launchTasks, offer["id"], fixed)
    return offer


async def update(bridge: Bridge, task_id: str, *states: str, **fields: Any) -> Json:
    def wanted(s: Json) -> bool:
        return (
            s["task_id"]["value"] == task_id
            and s["state"] in states
            and all(s.get(k) == v for k, v in fields.items())
        )

    status: Json = await bridge.next("update", wanted, timeout=DEADLINE)
    return status


async def read_file(offer: Json, fid: str, task_id: str, name: str) -> str:
    path = f"/frameworks/{fid}/executors/{task_id}/runs/latest/{name}"
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{agent_url(offer)}/files/read", params={"path": path, "offset": 0})
    answer.raise_for_status()
    return str(answer.json()["data"])


def is_file(path: Path) -> bool:
    return path.is_file()


def is_dir(path: Path) -> bool:
    return path.is_dir()


def group_alive(pgid: int) -> bool:
    """Some process of the group still runs (zombies waiting for their reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


async def test_agents_offer_ports_of_their_own(mesos: tuple[Any, Bridge]) -> None:
    _, bridge = mesos
    offers: list[Json] = []
    while len(offers) < 2:
        offers += await bridge.next("offers")
    ranges = sorted(
        (r["begin"], r["end"])
        for o in offers
        for res in o["resources"]
        if res["name"] == "ports"
        for r in res["ranges"]["range"]
    )
    assert ranges == [(20000, 20999), (21000, 21999)]
    assert {o["url"]["address"]["ip"] for o in offers} == {"127.0.0.1"}


async def test_an_http_server_task_serves_turns_healthy_and_is_gone_after_a_kill(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge]
) -> None:
    driver, bridge = mesos
    offer = (await bridge.next("offers"))[0]
    port = first_port(offer)
    task = command_task(
        "web.1",
        f'echo "sandbox=$MESOS_SANDBOX task=$MESOS_TASK_ID"; exec {TASK_PYTHON} -m http.server $PORT0',
        env={"PORT0": str(port)},
        ports=[port],
    )
    task["agent_id"] = offer["agent_id"]
    task["health_check"] = {
        "type": "HTTP",
        "http": {"scheme": "http", "port": port, "path": "/"},
        "delay_seconds": 0.0,
        "interval_seconds": 0.2,
        "timeout_seconds": 2.0,
        "consecutive_failures": 3,
        "grace_period_seconds": 30.0,
    }
    await asyncio.to_thread(driver.launchTasks, offer["id"], [task])
    await update(bridge, "web.1", "TASK_STARTING")
    await update(bridge, "web.1", "TASK_RUNNING")
    healthy = await update(bridge, "web.1", "TASK_RUNNING", healthy=True)
    assert healthy["reason"] == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/")
    assert answer.status_code == 200
    fid = sim.framework().framework_id
    stdout = await read_file(offer, fid, "web.1", "stdout")
    assert "task=web.1" in stdout
    sandbox = re.search(r"sandbox=(\S+)", stdout)
    assert sandbox and is_file(Path(sandbox.group(1), "stdout"))
    pid = sim.executor.pid_of(fid, "web.1") if sim.executor else None
    assert pid is not None and group_alive(pid)
    await asyncio.to_thread(driver.killTask, {"value": "web.1"})
    killed = await update(bridge, "web.1", "TASK_KILLED", "TASK_FAILED", "TASK_FINISHED")
    assert killed["state"] == "TASK_KILLED"
    assert "signal" in killed["message"]
    await poll_until(lambda: not group_alive(pid), "the task's process group ended", DEADLINE)


async def test_a_failing_command_fails_with_its_exit_status(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge]
) -> None:
    driver, bridge = mesos
    offer = await launch(driver, bridge, command_task("job.bad", "echo 'db is down' >&2; exit 7"))
    failed = await update(bridge, "job.bad", "TASK_FAILED", "TASK_FINISHED")
    assert failed["state"] == "TASK_FAILED"
    assert failed["message"] == "Command exited with status 7"
    assert "db is down" in await read_file(offer, sim.framework().framework_id, "job.bad", "stderr")


async def test_a_command_that_exits_0_finishes(mesos: tuple[Any, Bridge]) -> None:
    driver, bridge = mesos
    await launch(driver, bridge, command_task("job.ok", 'test -n "$MESOS_SANDBOX"'))
    await update(bridge, "job.ok", "TASK_STARTING")
    await update(bridge, "job.ok", "TASK_RUNNING")
    done = await update(bridge, "job.ok", "TASK_FINISHED", "TASK_FAILED")
    assert done["state"] == "TASK_FINISHED"


async def test_uris_are_fetched_extracted_and_made_executable_before_the_command(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge], tmp_path: Path
) -> None:
    driver, bridge = mesos
    archive = tmp_path / "app.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"hello from the archive\n"
        member = tarfile.TarInfo("app/greeting.txt")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\ncat app/greeting.txt\n")
    task = command_task("job.fetch", "./run.sh")
    task["command"]["uris"] = [
        {"value": f"file://{archive}", "extract": True},
        {"value": str(script), "executable": True, "extract": False},
    ]
    offer = await launch(driver, bridge, task)
    done = await update(bridge, "job.fetch", "TASK_FINISHED", "TASK_FAILED")
    assert done["state"] == "TASK_FINISHED", done.get("message")
    out = await read_file(offer, sim.framework().framework_id, "job.fetch", "stdout")
    assert "hello from the archive" in out


def make_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("site/index.txt", "served from a zip\n")


async def test_an_http_uri_is_downloaded_and_a_zip_unpacked(
    sim: MesosMasterSim, mesos: tuple[Any, Bridge], tmp_path: Path
) -> None:
    driver, bridge = mesos
    served = tmp_path / "served"
    served.mkdir()
    await asyncio.to_thread(make_zip, served / "site.zip")
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        task = command_task("job.zip", "cat site/index.txt")
        task["command"]["uris"] = [
            {"value": f"http://127.0.0.1:{server.server_port}/site.zip", "extract": True}
        ]
        offer = await launch(driver, bridge, task)
        done = await update(bridge, "job.zip", "TASK_FINISHED", "TASK_FAILED")
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
    assert done["state"] == "TASK_FINISHED", done.get("message")
    assert "served from a zip" in await read_file(offer, sim.framework().framework_id, "job.zip", "stdout")


async def test_a_uri_that_cannot_be_fetched_fails_the_task_as_the_agent_does(
    mesos: tuple[Any, Bridge], tmp_path: Path
) -> None:
    driver, bridge = mesos
    task = command_task("job.nofetch", "true")
    task["command"]["uris"] = [{"value": f"file://{tmp_path}/missing.tar.gz", "extract": True}]
    await launch(driver, bridge, task)
    failed = await update(bridge, "job.nofetch", "TASK_FAILED", "TASK_FINISHED", "TASK_RUNNING")
    assert failed["state"] == "TASK_FAILED"
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "Failed to fetch all URIs" in failed["message"]


async def test_a_task_that_turns_unhealthy_is_reported_and_killed(
    mesos: tuple[Any, Bridge], tmp_path: Path
) -> None:
    driver, bridge = mesos
    marker = tmp_path / "ok"
    marker.touch()
    task = command_task("web.sick", "sleep 300")
    task["health_check"] = {
        "type": "COMMAND",
        "command": {"shell": True, "value": f"test -f {marker}"},
        "delay_seconds": 0.0,
        "interval_seconds": 0.1,
        "timeout_seconds": 2.0,
        "consecutive_failures": 2,
        "grace_period_seconds": 0.0,
    }
    task["kill_policy"] = {"grace_period": {"nanoseconds": 1_000_000_000}}
    await launch(driver, bridge, task)
    await update(bridge, "web.sick", "TASK_RUNNING", healthy=True)
    marker.unlink()
    await update(bridge, "web.sick", "TASK_RUNNING", healthy=False)
    killed = await update(bridge, "web.sick", "TASK_KILLED", "TASK_FAILED")
    assert killed["state"] == "TASK_KILLED" and killed["healthy"] is False


async def test_stopping_the_simulator_ends_every_process(tmp_path: Path) -> None:
    sim = MesosMasterSim(agents=1, config=SimConfig(run_commands=True))
    await sim.start()
    try:
        driver, bridge = await start_driver(sim.address)
        try:
            # a child in the background too: the whole group goes
            await launch(driver, bridge, command_task("web.bg", "sleep 300 & sleep 300"))
            await update(bridge, "web.bg", "TASK_RUNNING")
        finally:
            await stop_driver(driver, failover=True)
        assert sim.executor is not None
        pid = sim.executor.pid_of(sim.framework().framework_id, "web.bg")
        assert pid is not None and group_alive(pid)
        work = sim.executor.root
    finally:
        await sim.stop()
    assert not group_alive(pid)  # stop() waited for them
    assert not is_dir(work)


async def test_sigterm_to_the_simulator_process_ends_its_tasks() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.mesos_sim", "--port", "0", "--agents", "1", "--run-commands",
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        address = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE)).decode().strip()
        driver, bridge = await start_driver(address)
        try:
            offer = await launch(driver, bridge, command_task("web.long", "sleep 300"))
            await update(bridge, "web.long", "TASK_RUNNING")
            fid = (await bridge.next("registered"))["value"]
            stdout = await read_file(offer, fid, "web.long", "stdout")
        finally:
            await stop_driver(driver, failover=True)
        forked = re.search(r"Forked command at (\d+)", stdout)
        assert forked, stdout
        pid = int(forked.group(1))
        assert group_alive(pid)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0
        assert not group_alive(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
