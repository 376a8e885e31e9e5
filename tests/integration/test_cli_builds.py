"""``bay build register``, ``bay builds``, ``bay build show`` and the build of each version in
``bay get group``: the real CLI against a real gateway and registry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from services.cli.errors import ExitCode
from tests.integration.gateway_harness import ServedGateway, Stack, serve, start_stack

BAY = str(Path(sys.executable).parent / "bay")


class Cli:
    def __init__(self, stack: Stack, served: ServedGateway, data_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
        self.env |= {
            "BAY_GATEWAY_URL": served.url,
            "BAY_TOKEN": stack.registry.token,
            "BAY_DATA_DIR": str(data_dir),
            "COLUMNS": "200",
        }

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            BAY, *args, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), " ".join(err.decode().split())


@pytest_asyncio.fixture
async def cli(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Cli]:
    stack = await start_stack(fresh_stream, tmp_path)
    served = await serve(stack.gateway)
    try:
        yield Cli(stack, served, tmp_path / "cli")
    finally:
        await served.stop()
        await stack.stop()


def tarball(tmp_path: Path) -> Path:
    src = tmp_path / "run.sh"
    src.write_text("#!/bin/sh\necho hello\n")
    path = tmp_path / "app.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname="run.sh")
    return path


async def test_register_list_show_and_the_build_of_each_version(cli: Cli, tmp_path: Path) -> None:
    art = tarball(tmp_path)
    digest = hashlib.sha256(art.read_bytes()).hexdigest()
    code, out, err = await cli(
        "build", "register", "--id", "app-1", "--artifact", f"file://{art}", "--extract",
        "--cmd", "sh run.sh", "--commit", "c0ffee1", "--branch", "main", "--meta", "pipeline=9",
    )  # fmt: skip
    assert code == 0, err
    assert " ".join(out.split()) == f"build app-1 registered: file://{art} (sha256 {digest[:12]})"
    image = f"registry.local/app@sha256:{'f' * 64}"
    code, _, err = await cli("build", "register", "--id", "app-0", "--image", image)
    assert code == 0, err
    # the same build again is a no-op; anything else under its id is refused
    again = ("build", "register", "--id", "app-0", "--image", image)
    assert (await cli(*again))[0] == 0
    code, _, err = await cli("build", "register", "--id", "app-0", "--image", image, "--commit", "other")
    assert code == ExitCode.CONFLICT and "immutable" in err, err
    code, _, err = await cli("build", "register", "--id", "app-9", "--image", "registry.local/app:9")
    assert code != 0 and "image" in err and "digest" in err, err

    code, out, err = await cli("builds")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:2] == ["ID", "RUNS"]
    assert [r[0] for r in rows[1:]] == ["app-1", "app-0"]
    assert rows[1][1:5] == [f"file://{art}", "(sha256", f"{digest[:12]})", "c0ffee1"]
    assert rows[2][1] == image

    code, out, err = await cli("build", "show", "app-1", "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["artifact"] == {
        "uri": f"file://{art}",
        "sha256": digest,
        "extract": True,
        "executable": False,
    }
    assert (shown["cmd"], shown["branch"], shown["built_by"], shown["metadata"]) == (
        "sh run.sh", "main", "ops", {"pipeline": "9"},
    )  # fmt: skip
    code, _, err = await cli("build", "show", "app-404")
    assert code == ExitCode.NOT_FOUND and "app-404" in err

    spec = tmp_path / "app.yaml"
    spec.write_text("name: app\nbuild: app-1\ninstances: 0\n")
    assert (await cli("apply", "-f", str(spec)))[0] == 0
    code, out, err = await cli("get", "group", "app", "-o", "json")
    assert code == 0, err
    targets = json.loads(out)["targets"]
    assert [(t["version"], t["build"], t["instances"], t["in_service"]) for t in targets] == [
        (1, "app-1", 0, True)
    ]
    code, out, err = await cli("get", "group", "app")
    assert code == 0 and "build: app-1" in out and "in_service: true" in out, out + err
