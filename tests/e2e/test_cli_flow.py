"""The ``bay`` CLI against a real ``bay up``: every command, and the exit codes of bad input."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess

from libs.natsserver import free_port
from tests.e2e.harness import BAY, READY, BayUp


async def test_ready_line_names_what_runs(bay: BayUp) -> None:
    m = await bay.wait_for(READY)
    assert m.group(1) == bay.gateway_url
    assert m.group(2) == bay.env["BAY_REGISTRY_LISTEN"]
    assert m.group(3) == f"nats://127.0.0.1:{bay.env['BAY_NATS_PORT']}"
    assert m.group(6) == bay.env["BAY_DNS_LISTEN"]
    services = {"nats", "registry", "scheduler", "dns", "deployer", "autoscaler", "gateway", "audit"}
    assert set(bay.pids()) == services
    token = bay.token
    assert not any(token in line for line in bay.lines), "the admin token must never be printed"
    async with bay.http() as http:
        clusters = (await http.get("/v1/clusters")).json()
    assert [c["name"] for c in clusters["clusters"]] == ["local"]


async def test_group_lifecycle_through_the_cli(bay: BayUp) -> None:
    spec = bay.cwd / "web.yaml"
    spec.write_text("name: e2e-web\ncmd: sleep 600\ninstances: 1\nenv:\n  MODE: one\n")
    code, out, err = await bay.cli("apply", "-f", str(spec))
    assert (code, out.strip()) == (0, "group e2e-web created (version 1)"), err

    spec.write_text("name: e2e-web\ncmd: sleep 601\ninstances: 1\nenv:\n  MODE: two\n")
    code, out, _ = await bay.cli("apply", "-f", str(spec))
    assert (code, out.strip()) == (0, "group e2e-web updated (version 1 -> 2)")
    code, out, _ = await bay.cli("apply", "-f", str(spec))
    assert (code, out.strip()) == (0, "group e2e-web unchanged (version 2)")

    code, out, _ = await bay.cli("get", "groups")
    rows = [line.split() for line in out.splitlines()]
    assert code == 0
    assert rows[0] == ["name", "service", "cluster", "instances", "version", "updated"]
    assert ["e2e-web", "e2e-web", "local", "1", "2"] in [r[:5] for r in rows]
    code, out, _ = await bay.cli("get", "groups", "--cluster", "elsewhere", "-o", "json")
    assert (code, json.loads(out)) == (0, {"groups": []})

    code, out, _ = await bay.cli("scale", "e2e-web", "3", "--reason", "e2e load")
    assert (code, out.strip()) == (0, "group e2e-web scaled to 3")
    async with bay.http() as http:
        assert (await http.get("/v1/groups/e2e-web")).json()["spec"]["instances"] == 3

    code, out, _ = await bay.cli("history", "e2e-web")
    assert code == 0
    # the update started a deployment (every change is one): the deployer's rollouts interleave
    events, _, deployments = out.partition("\n\n")  # the events table, then the deployments
    assert "rolling" in deployments, out
    lines = [line for line in events.splitlines() if " deployer " not in line]
    assert lines[0].split() == ["seq", "time", "type", "version", "actor", "summary"]
    # the unchanged apply came with the CLI's idempotency key: recorded, so that its key is kept
    types = [line.split()[3] for line in lines[1:]]
    assert types == ["GroupCreated", "GroupUpdated", "NothingChanged", "GroupScaled"]
    assert lines[3].rstrip().endswith("UpdateGroup: nothing changed")
    assert lines[4].rstrip().endswith("instances 1 -> 3 (e2e load)")

    code, out, _ = await bay.cli("rollback", "e2e-web", "1")
    assert (code, out.strip()) == (0, "group e2e-web rolled back to the spec of version 1 (now version 3)")
    code, out, _ = await bay.cli("get", "group", "e2e-web", "-o", "json")
    group = json.loads(out)
    assert group["version"] == 3
    assert (group["spec"]["cmd"], group["spec"]["env"], group["spec"]["instances"]) == (
        "sleep 600",
        {"MODE": "one"},
        3,
    )
    code, out, _ = await bay.cli("get", "group", "e2e-web")
    assert code == 0 and "cmd: sleep 600" in out and "version: 3" in out

    # a spec without `instances` keeps the current count (from stdin this time)
    code, out, _ = await bay.cli("apply", "-f", "-", stdin='{"name": "e2e-web", "cmd": "sleep 602"}')
    assert (code, out.strip()) == (0, "group e2e-web updated (version 3 -> 4)")
    async with bay.http() as http:
        assert (await http.get("/v1/groups/e2e-web")).json()["spec"]["instances"] == 3

    code, out, _ = await bay.cli("delete", "e2e-web")
    assert (code, out.strip()) == (0, "group e2e-web deleted")
    code, _, err = await bay.cli("get", "group", "e2e-web")
    assert code == 2 and "does not exist" in err
    async with bay.http() as http:
        assert (await http.get("/v1/groups/e2e-web")).status_code == 404


async def _line(stream: asyncio.StreamReader, timeout: float = 15.0) -> str:
    raw = await asyncio.wait_for(stream.readline(), timeout)
    assert raw, "the follower ended"
    return raw.decode().rstrip("\n")


async def test_events_past_and_followed(bay: BayUp) -> None:
    follower = await asyncio.create_subprocess_exec(
        BAY,
        "events",
        "--follow",
        "--aggregate",
        "group/e2e-ev",
        cwd=bay.cwd,
        env=bay.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert follower.stdout is not None
        async with bay.http() as http:
            created = await http.post(
                "/v1/groups", json={"name": "e2e-ev", "cmd": "sleep 600", "instances": 1}
            )
        assert created.status_code == 201, created.text
        seq = created.json()["sequence"]
        line = await _line(follower.stdout)
        assert line.split()[0] == str(seq) and "GroupCreated" in line and "group/e2e-ev" in line

        code, _, _ = await bay.cli("scale", "e2e-ev", "2")
        assert code == 0
        line = await _line(follower.stdout)
        assert "GroupScaled" in line and line.endswith("instances 1 -> 2")
    finally:
        follower.send_signal(signal.SIGINT)
        await asyncio.wait_for(follower.wait(), 10)

    # the past, from the audit trail (which may trail the log by a moment: ask until it has it,
    # every round being a real request, within a deadline)
    async def past() -> list[dict[str, object]]:
        while True:
            code, out, err = await bay.cli(
                "events", "--aggregate", "group/e2e-ev", "--type", "GroupScaled", "-o", "json"
            )
            assert code == 0, err
            found = [json.loads(line) for line in out.splitlines()]
            if found:
                return found

    found = await asyncio.wait_for(past(), 15)
    assert [(e["type"], e["aggregate_id"], e["data"]) for e in found] == [
        ("GroupScaled", "e2e-ev", {"instances": 2, "previous": 1})
    ]
    code, out, _ = await bay.cli("events", "--aggregate", "group/e2e-ev")
    assert code == 0
    assert [line.split()[3] for line in out.splitlines()][:1] == ["GroupCreated"]


async def test_bad_input_has_clear_errors_and_exit_codes(bay: BayUp) -> None:
    broken = bay.cwd / "broken.yaml"
    broken.write_text("name: bad\ncmd: [sleep\ninstances: 1\n")
    code, _, err = await bay.cli("apply", "-f", str(broken))
    assert code == 1 and re.search(r"broken\.yaml: line \d+, column \d+", err)

    invalid = bay.cwd / "invalid.yaml"
    invalid.write_text("name: Bad_Name\ncmd: sleep 1\ninstances: -1\n")
    code, _, err = await bay.cli("apply", "-f", str(invalid))
    assert code == 1, err
    assert "instances" in err and "hint:" in err

    code, _, err = await bay.cli("scale", "no-such-group", "2")
    assert code == 2 and "no-such-group" in err
    code, _, err = await bay.cli("history", "no-such-group")
    assert code == 2
    code, _, err = await bay.cli("scale", "no-such-group")
    assert code == 1 and "Missing argument" in err

    async with bay.http() as http:
        assert (await http.post("/v1/groups", json={"name": "e2e-bad", "cmd": "sleep 1"})).status_code == 201
    code, _, err = await bay.cli("rollback", "e2e-bad", "9")
    assert code == 2 and "version 9" in err

    code, _, err = await bay.cli("get", "groups", BAY_TOKEN="bay_not-a-real-token")
    assert code == 4 and "token" in err
    code, token, _ = await bay.cli("token", "create", "e2e-viewer", "--role", "viewer")
    assert code == 0
    code, _, _ = await bay.cli("get", "groups", BAY_TOKEN=token.strip())
    assert code == 0
    code, _, err = await bay.cli("scale", "e2e-bad", "2", BAY_TOKEN=token.strip())
    assert code == 4 and "operator" in err

    nowhere = f"http://127.0.0.1:{free_port()}"
    code, _, err = await bay.cli("get", "groups", BAY_GATEWAY_URL=nowhere)
    assert code == 5
    assert f"gateway not reachable at {nowhere}: is `bay up` running?" in " ".join(err.split())
