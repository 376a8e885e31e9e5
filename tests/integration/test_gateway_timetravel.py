"""Time travel over a real history: a group created, scaled, updated, rolled back and scaled down by
a real registry and a real local scheduler; at each point, ``?at=`` answers what the registry and
the scheduler said then. Plus the charts (ready history from the log, usage from bay.usage.>)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from libs.events.model import TERMINAL
from tests.integration.gateway_harness import rejected_fields
from tests.integration.test_cli_builds import Cli
from tests.integration.test_gateway_tasks import Setup, create, setup  # noqa: F401 (the fixture)
from tests.poll import poll_until

#: what the registry's Group has; ``?at=`` adds the point reached, the instances and the deployment
#: task states a task never leaves (the task listings leave them out without ``all``)
ENDED = {state.value for state in TERMINAL}
GROUP_FIELDS = ("spec", "version", "aggregate_version", "created", "updated", "deleted", "targets")


async def snapshot(s: Setup, name: str) -> dict[str, Any]:
    """The group (registry) and its tasks (scheduler) now, with the sequence the scheduler is at."""
    group = (await s.get(f"/v1/groups/{name}")).json()
    tasks = await s.tasks(name, all="true")
    return {"group": group, "tasks": tasks["tasks"], "sequence": tasks["status"]["sequence"]}


async def at(s: Setup, path: str, point: object) -> dict[str, Any]:
    resp = await s.get(path, at=str(point))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_a_group_at_each_point_of_its_history(setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    s = setup
    await create(s, name="web", instances=2, cmd="exec sleep 600")
    await s.until_status("web", lambda st: st["ready"] == 2)
    points = [await snapshot(s, "web")]

    resp = await s.http.post("/v1/groups/web/scale", json={"instances": 3}, headers=s.op)
    assert resp.status_code == 200, resp.text
    await s.until_status("web", lambda st: st["ready"] == 3)
    points.append(await snapshot(s, "web"))

    spec = points[-1]["group"]["spec"]
    resp = await s.http.put("/v1/groups/web", json={**spec, "env": {"COLOUR": "blue"}}, headers=s.op)
    assert resp.status_code == 200, resp.text
    points.append(await snapshot(s, "web"))
    assert points[-1]["group"]["version"] == 2

    resp = await s.http.post("/v1/groups/web/rollback", json={"version": 1}, headers=s.op)
    assert resp.status_code == 200, resp.text
    points.append(await snapshot(s, "web"))
    assert points[-1]["group"]["version"] == 3

    resp = await s.http.post("/v1/groups/web/scale", json={"instances": 1}, headers=s.op)
    assert resp.status_code == 200, resp.text
    await s.until_status("web", lambda st: st["ready"] == 1 and st["running"] == 1 and st["killing"] == 0)

    async def two_ended() -> dict[str, Any] | None:
        snap = await snapshot(s, "web")
        ended = [t for t in snap["tasks"] if t["state"] not in ("RUNNING", "STAGING", "STARTING")]
        return snap if len(ended) == 2 else None

    points.append(await poll_until(two_ended, "two tasks ended after the scale down", 15))

    for i, then in enumerate(points):
        seq = then["sequence"]
        past = await at(s, "/v1/groups/web", seq)
        assert {k: past[k] for k in GROUP_FIELDS} == {k: then["group"][k] for k in GROUP_FIELDS}, i
        assert past["instances"] == then["group"]["spec"]["instances"]
        assert past["at_sequence"] <= seq
        tasks = await at(s, "/v1/groups/web/tasks", seq)
        assert tasks["tasks"] == [t for t in then["tasks"] if t["state"] not in ENDED], i
        everything = await s.get("/v1/groups/web/tasks", at=str(seq), all="true")
        assert everything.json()["tasks"] == then["tasks"], i
        assert tasks["ready"] == sum(1 for t in then["tasks"] if t["ready"]), i

    # the same point by time: the state after the last event at or before it
    scaled = await at(s, "/v1/groups/web", points[1]["sequence"])
    by_time = await at(s, "/v1/groups/web", scaled["at_time"])
    assert by_time["at_sequence"] == scaled["at_sequence"] and by_time["spec"]["instances"] == 3
    just_before = datetime.fromisoformat(scaled["at_time"]) - timedelta(microseconds=1)
    earlier = await at(s, "/v1/groups/web", just_before.isoformat())
    assert earlier["at_sequence"] < scaled["at_sequence"]

    # before the group existed: 404 saying so; the future: now; nonsense: 422 naming `at`
    first = (await s.get("/v1/groups/web/history")).json()["events"][0]["sequence"]
    resp = await s.get("/v1/groups/web", at=str(first - 1))
    assert resp.status_code == 404 and "did not exist" in resp.json()["message"], resp.text
    resp = await s.get("/v1/groups/web/tasks", at="2001-01-01T00:00:00Z")
    assert resp.status_code == 404, resp.text
    future = await at(s, "/v1/groups/web", 10**12)
    now = (await s.get("/v1/groups/web")).json()
    assert {k: future[k] for k in GROUP_FIELDS} == {k: now[k] for k in GROUP_FIELDS}
    for bad in ("yesterday", "0", "-3", "2024-13-45T99:00:00Z", "1.5"):
        assert rejected_fields(await s.get("/v1/groups/web", at=bad)) == ["at"], bad
        assert rejected_fields(await s.get("/v1/groups/web/tasks", at=bad)) == ["at"], bad

    # the CLI: `bay get group NAME --at SEQ|TIME`, the group then with its tasks then
    bay = Cli(s.stack, s.served, tmp_path / "cli")
    code, out, err = await bay("get", "group", "web", "--at", str(points[1]["sequence"]), "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["spec"]["instances"] == 3 and shown["version"] == 1
    assert shown["tasks"] == points[1]["tasks"]
    code, out, err = await bay("get", "group", "web", "--at", scaled["at_time"], "-o", "json")
    assert code == 0 and json.loads(out)["at_sequence"] == scaled["at_sequence"], err
    code, _, err = await bay("get", "group", "web", "--at", "yesterday")
    assert code != 0 and "at" in err and "yesterday" in err, err

    # the charts: every ready count the group went through, from the log
    charts = (await s.get("/v1/groups/web/charts", minutes="10")).json()
    readies = [p["ready"] for p in charts["ready"]]
    assert 2 in readies and 3 in readies and readies[-1] == 1, charts["ready"]
    assert [p["desired"] for p in charts["ready"]][-1] == 1

    async def usage() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = (await s.get("/v1/groups/web/charts")).json()["usage"]
        return got

    samples = await poll_until(usage, "a usage point for web", 15)
    assert samples[-1]["tasks"] >= 1
    assert (await s.get("/v1/groups/nope/charts")).status_code == 404
