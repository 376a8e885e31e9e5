"""The README's CI job (examples/ci-deploy.sh), run by sh with a stand-in ``bay`` that records its
calls: it builds the artifact (a tar.gz of the HTTP server and its BUILD file), registers it with its
real sha256, deploys it to staging with --wait, then the same build id to production; a failed
staging deployment stops it before production. The server in the artifact answers with its build."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from libs.natsserver import free_port
from tests.poll import poll_until

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "ci-deploy.sh"

FAKE_BAY = """#!/bin/sh
# records each call as one JSON line; `deploy` exits with $FAKE_DEPLOY_EXIT
python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >> "$FAKE_LOG"
[ "$1" = get ] && exit "${FAKE_GET_EXIT:-0}"
[ "$1" = deploy ] && exit "${FAKE_DEPLOY_EXIT:-0}"
exit 0
"""


def run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    fake = tmp_path / "bay"
    fake.write_text(FAKE_BAY)
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    full = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
    full |= {"BAY": str(fake), "FAKE_LOG": str(log), "ARTIFACT_DIR": str(tmp_path / "artifacts")}
    full |= {"COMMIT": "abc123", "BRANCH": "main", **env}
    done = subprocess.run(["sh", str(SCRIPT)], env=full, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_builds_registers_and_deploys_staging_then_production(tmp_path: Path) -> None:
    done, calls = run(tmp_path)
    assert done.returncode == 0, done.stderr
    register = calls[0]
    assert register[:2] == ["build", "register"] and option(register, "--id") == "hello-abc123"
    artifact = Path(urlsplit(option(register, "--artifact")).path)
    assert option(register, "--sha256") == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert option(register, "--cmd") == "python3 server.py" and "--extract" in register
    with tarfile.open(artifact) as tar:
        assert sorted(tar.getnames()) == ["BUILD", "server.py"]
        build_file = tar.extractfile("BUILD")
        assert build_file is not None and build_file.read() == b"hello-abc123\n"

    deploys = [c for c in calls if c[0] == "deploy"]
    assert [d[1] for d in deploys] == ["hello-staging", "hello"]
    assert all(option(d, "--build") == "hello-abc123" and "--wait" in d for d in deploys)
    assert option(deploys[1], "--step") == "share=0.25"
    assert "analysis=60:failed_tasks<=0,restarts<=0" in deploys[1]
    assert "--step" not in deploys[0]


def test_a_failed_staging_deployment_stops_the_job(tmp_path: Path) -> None:
    done, calls = run(tmp_path, FAKE_DEPLOY_EXIT="7")
    assert done.returncode == 7
    assert [c[1] for c in calls if c[0] == "deploy"] == ["hello-staging"]  # never production


def test_a_first_run_creates_the_groups_and_waits_for_them(tmp_path: Path) -> None:
    done, calls = run(tmp_path, FAKE_GET_EXIT="2")
    assert done.returncode == 0, done.stderr
    assert [c[:2] for c in calls[1:]] == [
        ["get", "group"], ["apply", "-f"], ["scale", "hello-staging"],
        ["get", "group"], ["apply", "-f"], ["scale", "hello"],
    ]  # fmt: skip
    assert all("--wait" in c for c in calls if c[0] == "scale")


@pytest.mark.timeout(60)
async def test_the_artifact_serves_its_build(tmp_path: Path) -> None:
    done, calls = run(tmp_path)
    assert done.returncode == 0, done.stderr
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    with tarfile.open(Path(urlsplit(option(calls[0], "--artifact")).path)) as tar:
        tar.extractall(sandbox, filter="data")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", cwd=sandbox, env={**os.environ, "PORT0": str(port)}
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:

            async def answer() -> str | None:
                try:
                    return (await http.get("/")).text
                except httpx.TransportError:
                    return None  # not listening yet

            assert await poll_until(answer, "the server answering", 20) == "hello-abc123\n"
            assert (await http.get("/health")).status_code == 200
    finally:
        proc.kill()
        await proc.wait()
