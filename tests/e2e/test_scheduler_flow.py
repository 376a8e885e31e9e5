"""Tasks through the real CLI against a real ``bay up`` (whose scheduler runs the cluster ``local``):
scale and wait, list tasks, read a task's output, kill one, and a wait that runs out of time."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import dns.asyncquery
import dns.message

from libs.natsserver import free_port
from tests.e2e.harness import READY, BayUp, running_bay
from tests.integration.dns_harness import until_answer

HEADER = ["id", "state", "ready", "host", "ports", "age", "message"]


def task_rows(out: str, group: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.startswith(f"{group}.")]


async def test_ready_line_names_the_scheduler(bay: BayUp) -> None:
    m = await bay.wait_for(READY)
    assert m.group(5) == f"local {bay.env['BAY_SCHEDULER_LISTEN']}"
    assert "scheduler" in bay.pids()
    async with bay.http() as http:
        health = (await http.get("/healthz")).json()
    assert health["schedulers"] == {"local": True}


async def test_scale_wait_tasks_logs_and_kill(bay: BayUp) -> None:
    spec = bay.cwd / "sched-web.yaml"
    spec.write_text(
        "name: sched-web\n"
        'cmd: "echo serving on $PORT_HTTP; exec sleep 600"\n'
        "instances: 1\n"
        "ports: [{name: http}]\n"
        "resources: {cpus: 0.1, mem: 16}\n"
    )
    try:
        code, out, err = await bay.cli("apply", "-f", str(spec))
        assert code == 0, err

        code, out, err = await bay.cli("scale", "sched-web", "5", "--wait", "--timeout", "30", timeout=40)
        assert code == 0, err
        assert out.splitlines() == [
            "group sched-web scaled to 5",
            "group sched-web: 5/5 ready (running 5, staged 0, killing 0)",
        ]

        code, out, err = await bay.cli("tasks", "sched-web")
        assert code == 0, err
        assert out.splitlines()[0].split() == HEADER
        rows = task_rows(out, "sched-web")
        assert len(rows) == 5 and all(r[1] == "RUNNING" and r[2] == "yes" for r in rows), out
        assert "sched-web on local: 5/5 ready" in out and "pending:" not in out
        ports = {r[0]: int(r[4].removeprefix("http=")) for r in rows}
        assert len(set(ports.values())) == 5

        task_id = rows[0][0]
        code, out, err = await bay.cli("logs", task_id)
        assert (code, out) == (0, f"serving on {ports[task_id]}\n"), err
        code, out, err = await bay.cli("task", task_id, "-o", "json")
        assert code == 0, err
        detail = json.loads(out)
        assert (detail["id"], detail["state"], detail["ports"]) == (
            task_id,
            "RUNNING",
            {"http": ports[task_id]},
        )

        code, out, err = await bay.cli("kill", task_id)
        assert code == 0 and "replacement" in out, err
        # scaling to the count it has, with --wait, waits for the replacement
        code, out, err = await bay.cli("scale", "sched-web", "5", "--wait", "--timeout", "30", timeout=40)
        assert code == 0, err
        code, out, _ = await bay.cli("tasks", "sched-web", "--all")
        states = {r[0]: r[1] for r in task_rows(out, "sched-web")}
        assert states[task_id] == "KILLED" and list(states.values()).count("RUNNING") == 5, out
        assert re.search(rf"^{re.escape(task_id)}\s.*kill: operator", out, re.M)

        code, _, err = await bay.cli("logs", "sched-web.no-such-task")
        assert code == 2 and "no task" in err
    finally:
        await bay.cli("delete", "sched-web")


async def test_a_wait_that_runs_out_reports_why_tasks_are_pending(bay: BayUp) -> None:
    spec = bay.cwd / "sched-mars.yaml"
    spec.write_text(
        "name: sched-mars\ncmd: exec sleep 600\ninstances: 0\nconstraints: [[zone, '==', mars]]\n"
    )
    try:
        code, _, err = await bay.cli("apply", "-f", str(spec))
        assert code == 0, err
        began = time.monotonic()
        code, out, err = await bay.cli("scale", "sched-mars", "50", "--wait", "--timeout", "3")
        took = time.monotonic() - began
        assert code == 6, (out, err)
        flat = " ".join(err.split())
        assert "not ready in time: 0/50 ready after 3s" in flat
        assert "pending: 50 task(s) found no host: constraint zone==mars on 1 of 1 hosts failed" in flat
        assert 3 <= took < 10
        code, out, _ = await bay.cli("tasks", "sched-mars")
        assert code == 0 and task_rows(out, "sched-mars") == []
        assert "pending: 50 task(s) found no host" in out
    finally:
        await bay.cli("delete", "sched-mars")


async def test_bay_up_with_a_simulated_mesos_cluster(tmp_path: Path) -> None:
    sim_env = {
        "BAY_SIM_PORT": str(free_port()),
        "BAY_SIM_SCHEDULER_LISTEN": f"127.0.0.1:{free_port()}",
    }
    args = ("--sim-cluster", "sim", "--sim-agents", "4")
    # two schedulers and a simulated master to start: slower than the plain stack on a loaded machine
    async with running_bay(tmp_path, args=args, env_extra=sim_env, timeout=60) as bay:
        m = await bay.wait_for(READY)
        assert m.group(5) == (
            f"local {bay.env['BAY_SCHEDULER_LISTEN']}, sim {sim_env['BAY_SIM_SCHEDULER_LISTEN']}"
        )
        assert {"mesos-sim", "scheduler-sim"} <= set(bay.pids())
        spec = bay.cwd / "sim-web.yaml"
        spec.write_text(
            "name: sim-web\ncluster: sim\ncmd: sleep 600\ninstances: 1\n"
            "constraints: [[zone, '==', zone-1]]\n"  # agents are spread over zone-0..2
        )
        code, _, err = await bay.cli("apply", "-f", str(spec))
        assert code == 0, err
        code, out, err = await bay.cli("scale", "sim-web", "4", "--wait", "--timeout", "30", timeout=40)
        assert code == 0, err
        code, out, _ = await bay.cli("tasks", "sim-web")
        rows = task_rows(out, "sim-web")
        assert len(rows) == 4 and all(r[1] == "RUNNING" and r[2] == "yes" for r in rows), out
        assert {r[3] for r in rows} == {"agent-001.sim"}  # the only agent in zone-1 of 4
        assert "sim-web on sim: 4/4 ready" in out
        # DNS answers the simulated cluster's tasks at their agent's IP (from the offers' url)
        query = dns.message.make_query("sim-web.sim.bay.internal.", "A")

        async def addresses() -> set[str]:
            reply = await dns.asyncquery.udp(query, "127.0.0.1", port=bay.dns_port, timeout=2.0)
            return {r.address for rrset in reply.answer for r in rrset}

        assert await until_answer(addresses, {"127.0.0.1"}) == {"127.0.0.1"}
        async with bay.http() as http:
            clusters = {c["name"]: c for c in (await http.get("/v1/clusters")).json()["clusters"]}
            health = (await http.get("/healthz")).json()
        assert clusters["sim"]["backend"] == "mesos"
        assert clusters["sim"]["address"] == f"127.0.0.1:{sim_env['BAY_SIM_PORT']}"
        # where each cluster's scheduler is reached, as `bay up` registered it
        assert clusters["sim"]["scheduler_address"] == sim_env["BAY_SIM_SCHEDULER_LISTEN"]
        assert clusters["local"]["scheduler_address"] == bay.env["BAY_SCHEDULER_LISTEN"]
        assert health["schedulers"] == {"local": True, "sim": True}


async def test_cluster_register_and_list(bay: BayUp) -> None:
    await bay.wait_for(READY)
    code, out, err = await bay.cli(
        "cluster",
        "register",
        "edge",
        "--backend",
        "mesos",
        "--address",
        "10.0.0.5:5050",
        "--label",
        "region=eu",
    )
    assert code == 0, err
    assert out.strip() == "cluster edge registered (mesos, 10.0.0.5:5050)"
    # its scheduler, said later: a change, not a conflict
    code, out, err = await bay.cli(
        "cluster", "register", "edge", "--backend", "mesos", "--address", "10.0.0.5:5050",
        "--label", "region=eu", "--scheduler", "10.0.0.6:50061",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == "cluster edge registered (mesos, 10.0.0.5:5050, scheduler 10.0.0.6:50061)"
    code, out, err = await bay.cli("cluster", "list")
    assert code == 0, err
    assert out.split()[:5] == ["NAME", "BACKEND", "ADDRESS", "SCHEDULER", "LABELS"]
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["edge"] == ["mesos", "10.0.0.5:5050", "10.0.0.6:50061", "region=eu"]
    assert rows["local"] == ["local", "-", bay.env["BAY_SCHEDULER_LISTEN"], "-"]
    code, out, err = await bay.cli("cluster", "register", "bad", "--backend", "kubernetes")
    assert code == 1 and "backend" in err
