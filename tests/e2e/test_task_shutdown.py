"""Stopping ``bay up`` ends the local cluster's tasks (ports free again), unless ``--keep-tasks``:
then the next ``bay up`` re-adopts them. A scheduler that dies alone re-adopts its tasks."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

from tests.e2e.harness import BayUp, pid_gone, running_bay, start_bay, wait_gone
from tests.tasks import TINYHTTP

SPEC = (
    f"name: held\ncmd: {json.dumps(TINYHTTP)}\ninstances: 3\n"
    "ports: [{name: http}]\nresources: {cpus: 0.1, mem: 16}\n"
)


async def ready_tasks(bay: BayUp, count: int = 3) -> dict[str, tuple[int, int]]:
    """Task id -> (wrapper pid, port) of the group's tasks, once ``count`` are ready."""
    spec = bay.cwd / "held.yaml"
    spec.write_text(SPEC.replace("instances: 3", f"instances: {count}"))
    code, _, err = await bay.cli("apply", "-f", str(spec))
    assert code == 0, err
    code, _, err = await bay.cli("scale", "held", str(count), "--wait", "--timeout", "30", timeout=40)
    assert code == 0, err
    code, out, err = await bay.cli("tasks", "held", "-o", "json")
    assert code == 0, err
    tasks = json.loads(out)["tasks"]
    found = {}
    for task in tasks:
        doc = json.loads(
            (bay.data_dir / "local" / "local" / "sandboxes" / task["id"] / "task.json").read_text()
        )
        found[task["id"]] = (int(doc["pid"]), int(task["ports"]["http"]))
    assert len(found) == count
    return found


def group_alive(pgid: int) -> bool:
    """A live (not zombie) process in group ``pgid``: what is reparented to a PID 1 that does not
    reap stays a zombie, in the group, but holds nothing."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_sigterm_ends_the_local_tasks_and_frees_their_ports(tmp_path: Path) -> None:
    async with running_bay(tmp_path) as bay:
        tasks = await ready_tasks(bay)
        assert not any(port_free(port) for _, port in tasks.values())
        assert await bay.terminate(timeout=40) == 0
        assert "bay: stopping the local cluster's tasks" in bay.lines
        assert bay.lines[-1] == "bay: stopped"
        for task_id, (pid, port) in tasks.items():
            assert pid_gone(pid) and not group_alive(pid), f"{task_id} still runs"
            assert port_free(port), f"port {port} of {task_id} is still held"
    # the log says how they ended: killed for the shutdown, not lost
    async with running_bay(tmp_path) as again:
        code, out, err = await again.cli("tasks", "held", "--all", "-o", "json")
        assert code == 0, err
        ended = {t["id"]: t for t in json.loads(out)["tasks"] if t["id"] in tasks}
        assert {t["state"] for t in ended.values()} == {"KILLED"}
        assert {t.get("kill_reason") for t in ended.values()} == {"shutdown"}


async def test_keep_tasks_leaves_them_to_the_next_bay_up(tmp_path: Path) -> None:
    first = await start_bay(tmp_path, args=("--keep-tasks",))
    try:
        tasks = await ready_tasks(first, 2)
        assert await first.terminate(timeout=30) == 0
        assert "bay: leaving the local cluster's tasks running (--keep-tasks)" in first.lines
    except BaseException:
        await first.kill_leftovers()
        raise
    assert all(not pid_gone(pid) for pid, _ in tasks.values())
    async with running_bay(tmp_path) as second:
        code, out, err = await second.cli("scale", "held", "2", "--wait", "--timeout", "30", timeout=40)
        assert code == 0, err + "\n".join(second.lines[-40:])
        code, out, err = await second.cli("tasks", "held", "-o", "json")
        assert code == 0, err
        assert {t["id"] for t in json.loads(out)["tasks"]} == set(tasks)  # re-adopted, none replaced
        assert all(not pid_gone(pid) for pid, _ in tasks.values())
        assert await second.terminate(timeout=40) == 0
    for pid, _ in tasks.values():
        await wait_gone(pid, 5)


async def test_a_scheduler_killed_alone_readopts_its_tasks(tmp_path: Path) -> None:
    async with running_bay(tmp_path) as bay:
        tasks = await ready_tasks(bay, 2)
        scheduler = bay.pids()["scheduler"]
        start = len(bay.lines)
        os.kill(scheduler, signal.SIGKILL)
        await bay.wait_for(r"^bay: scheduler restarted \(pid \d+\)$", 30, start=start)
        # serving once the dead one's lease has run out (a CLI call before that is refused)
        await bay.wait_for(r"^scheduler\s+\| .*scheduler for cluster local .* listening on", 40, start=start)
        code, out, err = await bay.cli("scale", "held", "2", "--wait", "--timeout", "30", timeout=40)
        assert code == 0, err
        code, out, err = await bay.cli("tasks", "held", "-o", "json")
        assert code == 0, err
        assert {t["id"] for t in json.loads(out)["tasks"]} == set(tasks)
        assert all(not pid_gone(pid) for pid, _ in tasks.values())
