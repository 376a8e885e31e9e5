"""The Mesos backend's pure conversions: offers to hosts, statuses, TaskInfos (resources, command,
container, health check), and the simulator's command script and /files/read."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.scheduler.backends.mesos.config import MesosBackendConfig
from services.scheduler.backends.mesos.convert import (
    agent_address,
    offer_to_host,
    scalar_text,
    to_task_status,
)
from services.scheduler.backends.mesos.taskinfo import OfferPool, command_info, health_check_info, task_info
from services.scheduler.backends.mesos.updates import Lanes
from services.scheduler.ports import HealthCheckSpec, LaunchSpec, PortRange, TaskState
from tests.mesos_sim.sandbox import Sandbox, Step, files_read, script


def spec(**kw: object) -> LaunchSpec:
    base: dict[str, object] = {
        "task_id": "web.1",
        "group": "web",
        "group_version": 3,
        "host_id": "A1",
        "offer_id": "O1",
        "cmd": "serve",
        "image": None,
        "args": (),
        "env": {},
        "cpus": 0.5,
        "mem": 64.0,
        "disk": 0.0,
        "ports": {},
    }
    return LaunchSpec(**{**base, **kw})  # type: ignore[arg-type]


def scalar(name: str, value: float, **extra: object) -> dict[str, object]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, **extra}


def ports(*ranges: tuple[int, int], **extra: object) -> dict[str, object]:
    rng = [{"begin": b, "end": e} for b, e in ranges]
    return {"name": "ports", "type": "RANGES", "ranges": {"range": rng}, **extra}


def test_master_address_accepts_urls_and_defaults_the_port() -> None:
    assert MesosBackendConfig("http://m1:5050/", "c").master_address == "m1:5050"
    assert MesosBackendConfig("m2", "c").master_address == "m2:5050"
    assert MesosBackendConfig("10.0.0.1:5051", "c").framework_name == "bay-c"


def test_an_offer_is_a_host_with_labels_summed_scalars_and_merged_ports() -> None:
    offer = {
        "id": {"value": "O1"},
        "agent_id": {"value": "A1"},
        "hostname": "h1",
        "url": {"scheme": "http", "address": {"hostname": "h1", "ip": "10.0.0.1", "port": 5051}},
        "resources": [
            scalar("cpus", 2.0, role="web", reservations=[{"role": "web"}]),
            scalar("cpus", 6.0),
            scalar("mem", 1024.0),
            ports((31000, 31009), (31010, 31020), (32000, 32000)),
        ],
        "attributes": [
            {"name": "zone", "type": "TEXT", "text": {"value": "eu-1"}},
            {"name": "gen", "type": "SCALAR", "scalar": {"value": 2.0}},
            {"name": "ratio", "type": "SCALAR", "scalar": {"value": 0.25}},
        ],
    }
    host = offer_to_host(offer)
    assert (host.host_id, host.hostname, host.offer_id) == ("A1", "h1", "O1")
    assert (host.cpus, host.mem, host.disk) == (8.0, 1024.0, 0.0)
    assert host.ports == (PortRange(31000, 31020), PortRange(32000, 32000))
    assert dict(host.labels) == {"zone": "eu-1", "gen": "2", "ratio": "0.25"}
    assert agent_address(offer) == "10.0.0.1:5051"
    assert scalar_text(3.1) == "3.1"


def test_a_status_names_the_state_without_prefix_and_the_exit_code() -> None:
    raw = {
        "task_id": {"value": "web.1"},
        "agent_id": {"value": "A1"},
        "state": "TASK_FAILED",
        "message": "Command exited with status 3",
        "reason": "REASON_COMMAND_EXECUTOR_FAILED",
        "timestamp": 1700000000.5,
        "healthy": False,
    }
    st = to_task_status(raw, "h1", now=1.0)
    assert (st.state, st.exit_code, st.healthy, st.hostname, st.host_id) == (
        TaskState.FAILED,
        3,
        False,
        "h1",
        "A1",
    )
    assert st.timestamp == 1700000000.5 and st.reason == "REASON_COMMAND_EXECUTOR_FAILED"
    done = to_task_status({"task_id": {"value": "x"}, "state": "TASK_FINISHED"}, "", now=7.0)
    assert (done.exit_code, done.timestamp, done.host_id, done.healthy) == (0, 7.0, "", None)
    odd = to_task_status({"task_id": {"value": "x"}, "state": "TASK_SOMETHING_NEW"}, "", now=7.0)
    assert odd.state is TaskState.UNKNOWN


def test_resources_keep_the_role_they_were_offered_with_and_overflow_goes_to_the_master() -> None:
    pool = OfferPool(
        [
            scalar("cpus", 0.5, role="web", reservations=[{"role": "web"}]),
            scalar("cpus", 4.0),
            ports((31000, 31004), role="web"),
            ports((31005, 31010)),
        ]
    )
    first = pool.take_scalar("cpus", 1.0)
    assert first == [scalar("cpus", 0.5, role="web", reservations=[{"role": "web"}]), scalar("cpus", 0.5)]
    assert pool.take_scalar("cpus", 5.0) == [scalar("cpus", 3.5), scalar("cpus", 1.5)]  # more than left
    assert pool.take_ports([31006, 31001, 31007]) == [
        ports((31001, 31001), role="web"),
        ports((31006, 31007)),
    ]


def test_command_info_runs_cmd_in_the_shell_with_args_and_images_with_their_entrypoint() -> None:
    env = {"A": "1"}
    sh = command_info(spec(cmd="echo $1", args=("it's",)), env)
    assert sh["shell"] is True and sh["value"] == "set -- 'it'\"'\"'s'; echo $1"
    assert sh["environment"] == {"variables": [{"name": "A", "value": "1"}]}
    argv = command_info(spec(cmd=None, args=("/bin/server", "-v")), env)
    assert (argv["shell"], argv["value"], argv["arguments"]) == (False, "/bin/server", ["/bin/server", "-v"])
    image = command_info(spec(cmd=None, image="img:1", args=("-v",)), env)
    assert (image["shell"], image["arguments"]) == (False, ["-v"]) and "value" not in image


def test_health_checks_follow_mesos_healthcheck() -> None:
    env = {"HOST": "h1"}
    http_check = HealthCheckSpec("http", path="/ok", port_name="admin", grace_period_seconds=60.0)
    out = health_check_info(http_check, {"web": 31000, "admin": 31001}, env)
    assert out["type"] == "HTTP" and out["http"] == {"scheme": "http", "port": 31001, "path": "/ok"}
    assert (out["grace_period_seconds"], out["consecutive_failures"], out["delay_seconds"]) == (60.0, 3, 0.0)
    assert health_check_info(HealthCheckSpec("tcp"), {"web": 31000}, env)["tcp"] == {"port": 31000}
    cmd = health_check_info(HealthCheckSpec("command", command="curl -f localhost"), {}, env)
    assert cmd["type"] == "COMMAND" and cmd["command"]["value"] == "curl -f localhost"
    with pytest.raises(ValueError, match="needs a port"):
        health_check_info(HealthCheckSpec("http"), {}, env)


def test_task_info_rejects_a_spec_with_nothing_to_run() -> None:
    with pytest.raises(ValueError, match="nothing to run"):
        task_info(spec(cmd=None), "h1", OfferPool([]))
    info = task_info(spec(disk=10.0, ports={"web": 31000}), "h1", OfferPool([scalar("disk", 100.0)]))
    assert [r["name"] for r in info["resources"]] == ["cpus", "mem", "disk", "ports"]


def test_the_simulated_command_executor_understands_a_little_shell() -> None:
    assert script("echo 'db is down' >&2; exit 3") == [
        Step("out", stream="stderr", text="db is down\n"),
        Step("exit", code=3),
    ]
    assert script("sleep 0.5; false") == [Step("sleep", seconds=0.5), Step("exit", code=1)]
    assert script("python -m http.server $PORT0")[-1] == Step("block")
    assert script("sleep infinity") == [Step("block")]


def test_files_read_answers_like_an_agent() -> None:
    box = Sandbox()
    box.write("stdout", "hello\nworld\n")
    boxes = {("F", "E"): box}
    path = "/frameworks/F/executors/E/runs/latest/stdout"

    def read(**query: str) -> tuple[int, object]:
        resp = files_read(boxes, query)
        return resp.status, (json.loads(resp.body) if resp.status == 200 else resp.body)

    assert read(path=path, offset="-1") == (200, {"offset": 12, "data": ""})
    assert read(path=path, offset="6", length="3") == (200, {"offset": 6, "data": "wor"})
    assert read(path=path, offset="0") == (200, {"offset": 0, "data": "hello\nworld\n"})
    assert read(path=path, offset="99") == (200, {"offset": 12, "data": ""})
    assert read(path="/frameworks/F/executors/X/runs/latest/stdout")[0] == 404
    assert read(path="/frameworks/F/executors/E/runs/latest")[0] == 400
    assert read()[0] == 400


async def test_lanes_keep_order_per_task_and_drop_a_resent_update_still_in_hand() -> None:
    delivered: list[tuple[str, str]] = []
    gate, b_done, all_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def deliver(status: dict[str, object]) -> None:
        task = status["task_id"]["value"]  # type: ignore[index]
        if task == "a":
            await gate.wait()
        delivered.append((task, str(status["uuid"])))
        if task == "b":
            b_done.set()
        if len(delivered) == 3:
            all_done.set()

    lanes = Lanes(deliver, limit=4)

    def update(task: str, uuid: str) -> dict[str, object]:
        return {"task_id": {"value": task}, "uuid": uuid}

    lanes.push(update("a", "a1"))
    lanes.push(update("a", "a2"))
    lanes.push(update("a", "a1"))  # re-sent while a1 is in the sink: dropped
    lanes.push(update("b", "b1"))  # another task does not wait for "a"
    await asyncio.wait_for(b_done.wait(), 5)
    assert lanes.busy == 1
    gate.set()
    await asyncio.wait_for(all_done.wait(), 5)
    await lanes.close()
    assert delivered == [("b", "b1"), ("a", "a1"), ("a", "a2")] and lanes.busy == 0
