"""Deployments that go wrong, and aborts, on the whole platform with real tasks.

A build that crashes, one that fails its health check and one that fails its canary's analysis:
each deployment fails and rolls back by itself, the ready count never below the rolling bound, and
the group ends running only the stable build. An abort at every step of a canary and of a blue-green
deployment leaves exactly the stable build: its spec and version, its tasks, nothing else.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.builds import HTTP_SERVER, make_artifact
from tests.deploying import deploy, deployment_until, group_spec, register_build, watching
from tests.e2e.harness import BayUp, running_bay

pytestmark = pytest.mark.timeout(600)


def over(d: dict[str, object]) -> bool:
    return bool(d["ended"])


@pytest_asyncio.fixture(scope="module")
async def platform() -> AsyncIterator[BayUp]:
    work = Path(tempfile.mkdtemp(prefix="bay-e2e-deploy-fail-"))
    work.chmod(0o711)  # noqa: ASYNC240 (once, before the platform starts): tasks reach their sandboxes
    try:
        async with running_bay(work, timeout=90) as bay:
            yield bay
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = Path("/tmp") / f"bay-artifacts-fail-{tmp_path_factory.getbasetemp().name}"
    base.mkdir(mode=0o755, exist_ok=True)
    base.chmod(0o755)
    return base


async def register(http: httpx.AsyncClient, artifacts: Path, build_id: str, *, cmd: str = HTTP_SERVER,
                   serves: bool = True) -> None:  # fmt: skip
    """A build; ``serves=False``: its artifact lacks the file the health check asks for."""
    files = None if serves else {"other.txt": "no build.txt here\n"}
    uri, sha256 = make_artifact(artifacts, build_id, files=files)
    body = {"id": build_id, "artifact": {"uri": uri, "sha256": sha256, "extract": True}, "cmd": cmd}
    resp = await http.post("/v1/builds", json=body)
    assert resp.status_code in (200, 201), resp.text


async def create(bay: BayUp, artifacts: Path, name: str, instances: int) -> None:
    async with bay.http() as http:
        await register_build(http, artifacts, f"{name}-stable")
        resp = await http.post("/v1/groups", json=group_spec(name, f"{name}-stable", instances))
        assert resp.status_code in (200, 201), resp.text
        async with watching(http, name) as watch:
            await watch.until(lambda s: s["ready"] == instances, 60)


async def only_stable(http: httpx.AsyncClient, name: str, instances: int) -> None:
    """The group runs exactly its stable build: spec, targets, tasks."""
    group = (await http.get(f"/v1/groups/{name}")).json()
    assert group["spec"]["build"] == f"{name}-stable", group["spec"]
    targets = group["targets"]
    assert len(targets) == 1 and targets[0]["build"] == f"{name}-stable", targets
    assert targets[0]["instances"] == instances and targets[0]["in_service"]
    version = targets[0]["version"]
    async with watching(http, name) as watch:
        await watch.until(
            lambda s: s["ready"] == instances and s["running"] == instances and not s["killing"], 60
        )
    tasks = (await http.get(f"/v1/groups/{name}/tasks")).json()["tasks"]
    live = [t for t in tasks if t["state"] not in ("FINISHED", "FAILED", "KILLED", "LOST", "ERROR")]
    assert len(live) == instances and {t["group_version"] for t in live} == {version}, live


@pytest.mark.parametrize(
    ("case", "build_kw", "strategy"),
    [
        ("crash", {"cmd": "exit 3"}, {"progress_deadline_seconds": 15, "min_ready_seconds": 1}),
        ("unhealthy", {"serves": False}, {"progress_deadline_seconds": 15, "min_ready_seconds": 1}),
        (
            "analysis",
            {},
            {
                "kind": "canary",
                "min_ready_seconds": 1,
                "steps": [
                    {"set_share": 0.25},
                    {
                        "analysis": {
                            "seconds": 5,
                            "thresholds": [{"metric": "ready_fraction", "op": ">=", "value": 2}],
                        }
                    },
                ],
            },
        ),
    ],
)
async def test_a_failing_build_rolls_back_by_itself(
    platform: BayUp, artifacts: Path, case: str, build_kw: dict[str, Any], strategy: dict[str, Any]
) -> None:
    name, n = f"fail-{case}", 4
    await create(platform, artifacts, name, n)
    async with platform.http() as http, watching(http, name) as watch:
        await register(http, artifacts, f"{name}-bad", **build_kw)
        watch.arm()
        await deploy(http, name, {"build": f"{name}-bad", "strategy": strategy})
        done = await deployment_until(http, name, over, 120)
        assert done["state"] == "rolled_back" and done["reason"], done
        await only_stable(http, name, n)
        bound = math.ceil(n * 1.0)
        assert watch.min_ready is not None and watch.min_ready >= bound, watch.min_ready


CANARY = [{"set_share": 0.25}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}]


@pytest.mark.parametrize("step", range(len(CANARY)))
async def test_an_abort_at_each_canary_step_leaves_only_the_stable_build(
    platform: BayUp, artifacts: Path, step: int
) -> None:
    name, n = f"abc-{step}", 3
    await create(platform, artifacts, name, n)
    async with platform.http() as http:
        await register_build(http, artifacts, f"{name}-new")
        strategy = {"kind": "canary", "steps": CANARY, "min_ready_seconds": 0.5}
        await deploy(http, name, {"build": f"{name}-new", "strategy": strategy})
        for _ in range(step // 2):  # pass the pauses before the step
            await deployment_until(http, name, lambda d: d["state"] == "paused", 60)
            assert (await http.post(f"/v1/groups/{name}/deployment/promote")).status_code == 200
        await deployment_until(http, name, lambda d: d["current_step"] == step and d["new_running"] >= 1, 60)
        resp = await http.post(f"/v1/groups/{name}/deployment/abort")
        assert resp.status_code == 200, resp.text
        done = await deployment_until(http, name, over, 60)
        assert done["state"] == "aborted" and done["reason"].startswith("aborted"), done
        await only_stable(http, name, n)


BLUE_GREEN_MOMENTS = ("starting", "ready", "switched")


@pytest.mark.parametrize("moment", BLUE_GREEN_MOMENTS)
async def test_an_abort_at_each_blue_green_moment_leaves_only_the_stable_build(
    platform: BayUp, artifacts: Path, moment: str
) -> None:
    name, n = f"abg-{moment}", 3
    await create(platform, artifacts, name, n)
    async with platform.http() as http:
        await register_build(http, artifacts, f"{name}-new")
        strategy = {"kind": "blue-green", "scale_down_delay_seconds": 600, "min_ready_seconds": 0.5}
        await deploy(http, name, {"build": f"{name}-new", "strategy": strategy})
        if moment == "starting":
            await deployment_until(http, name, lambda d: d["new_running"] >= 1, 60)
        else:
            await deployment_until(http, name, lambda d: d["new_ready"] == n, 60)
        if moment == "switched":
            assert (await http.post(f"/v1/groups/{name}/deployment/promote")).status_code == 200
            await deployment_until(
                http,
                name,
                lambda d: any(s["name"] == "switch" and s["state"] == "done" for s in d["steps"]),
                60,
            )
        resp = await http.post(f"/v1/groups/{name}/deployment/abort")
        assert resp.status_code == 200, resp.text
        done = await deployment_until(http, name, over, 60)
        assert done["state"] == "aborted" and done["reason"].startswith("aborted"), done
        await only_stable(http, name, n)
