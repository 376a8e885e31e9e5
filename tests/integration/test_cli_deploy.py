"""``bay deploy``, ``bay rollout ...`` and the deployments in ``bay history``: the real CLI (a process)
against a real gateway (uvicorn) and registry, with a fake deployer (a real grpc.aio server) that the
test moves on."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from bay.v1 import deploy_pb2

from services.cli.errors import ExitCode
from tests.integration.deployer_fake import FakeDeployer, start_deployer
from tests.integration.gateway_harness import ServedGateway, Stack, serve, start_stack

pytestmark = pytest.mark.timeout(120)

BAY = str(Path(sys.executable).parent / "bay")
DEADLINE = 30.0


@dataclass
class Cli:
    stack: Stack
    deployer: FakeDeployer
    served: ServedGateway
    env: dict[str, str]

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            BAY, *args, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), " ".join(err.decode().split())

    def requests(self, method: str) -> list[object]:
        return [r for m, r, _, _ in self.deployer.book.seen if m == method]


async def until_line(proc: asyncio.subprocess.Process, ok: Callable[[str], bool]) -> str:
    """The first line of the process's stderr for which ``ok`` holds."""
    assert proc.stderr is not None
    said: list[str] = []

    async def read() -> str:
        while line := (await proc.stderr.readline()).decode():  # type: ignore[union-attr]
            said.append(line)
            if ok(line):
                return line
        raise AssertionError(f"stderr ended without the line; it said {said}")

    try:
        return await asyncio.wait_for(read(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"no such line within {DEADLINE}s; stderr said {said}") from None


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), " ".join(err.decode().split())


def environment(served: ServedGateway, token: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
    return env | {
        "BAY_GATEWAY_URL": served.url,
        "BAY_TOKEN": token,
        "BAY_DATA_DIR": str(data_dir),
        "COLUMNS": "200",
    }


@pytest_asyncio.fixture
async def cli(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Cli]:
    deployer = await start_deployer()
    stack = await start_stack(fresh_stream, tmp_path, deployer_addr=deployer.addr)
    served = await serve(stack.gateway)
    running = Cli(stack, deployer, served, environment(served, stack.registry.token, tmp_path / "cli"))
    try:
        yield running
    finally:
        await served.stop()
        await stack.stop()
        await running.deployer.stop()  # a test may have started another


async def test_deploy_sends_the_steps_and_says_what_started(cli: Cli) -> None:
    code, out, err = await cli(
        "deploy", "web", "--build", "web-42", "--step", "share=0.2", "--step", "pause=30", "--step", "pause",
        "--step", "weight=50", "--step", "analysis=60:failed_tasks<=0,cpu<0.8", "--min-ready", "5",
        "--deadline", "300", "--reason", "ci",
    )  # fmt: skip
    assert code == 0, err
    assert (
        out.strip()
        == "deployment started: web-1 canary v1 (web-41) -> v2 (web-42): running, step 1/6 share 20%"
    )
    (sent,) = cli.requests("Deploy")
    assert isinstance(sent, deploy_pb2.DeployRequest)
    assert (sent.build, sent.strategy.kind, sent.options.reason) == ("web-42", "canary", "ci")
    steps = sent.strategy.steps
    assert [s.WhichOneof("step") for s in steps] == ["set_share", "pause", "pause", "set_weight", "analysis"]
    assert (steps[0].set_share, steps[1].pause.seconds, steps[3].set_weight) == (0.2, 30, 50)
    assert not steps[2].pause.HasField("seconds")
    assert [(t.metric, t.op, t.value) for t in steps[4].analysis.thresholds] == [
        ("failed_tasks", "<=", 0), ("cpu", "<", 0.8)
    ]  # fmt: skip
    assert (sent.strategy.min_ready_seconds, sent.strategy.progress_deadline_seconds) == (5, 300)
    assert sent.options.idempotency_key  # the CLI's own, so that a retry is harmless

    code, _, err = await cli("deploy", "web", "--build", "web-43")
    assert code == ExitCode.CONFLICT, err
    assert "web-1" in err and "supersede" in err
    code, out, err = await cli(
        "deploy", "web", "--build", "web-43", "--strategy", "blue-green", "--supersede"
    )
    assert code == 0, err
    assert out.startswith("deployment started: web-2 blue-green v2 (web-42) -> v3 (web-43)")


async def test_bad_input_is_refused_before_any_request(cli: Cli) -> None:
    code, _, err = await cli("deploy", "web", "--build", "web-42", "--step", "share=lots")
    assert code == ExitCode.USAGE and "'lots' is not a number" in err and "hint:" in err
    code, _, err = await cli("deploy", "web", "--build", "web-42", "--step", "jump=3")
    assert code == ExitCode.USAGE and "unknown step 'jump'" in err
    code, _, err = await cli("deploy", "web")
    assert code == ExitCode.USAGE and "--build" in err
    code, _, err = await cli(
        "deploy", "web", "--build", "web-42", "--strategy", "rolling", "--step", "share=0.5"
    )
    assert code == ExitCode.USAGE and "strategy.steps" in err  # the gateway's 422, naming the field
    assert cli.requests("Deploy") == []


async def test_deploy_wait_follows_it_to_success(cli: Cli) -> None:
    proc = await cli.start("deploy", "web", "--build", "web-42", "--wait", "--timeout", "60")
    await until_line(proc, lambda line: "0/4 new ready" in line)  # following it
    book = cli.deployer.book
    await book.change(book.deployments["web-1"], lambda d: setattr(d, "new_ready", 3))
    await until_line(proc, lambda line: "3/4 new ready" in line)
    await book.change(
        book.deployments["web-1"], lambda d: (setattr(d, "state", "succeeded"), setattr(d, "new_ready", 4))
    )
    code, out, err = await finish(proc)
    assert code == 0, err
    assert out.splitlines()[-1] == "web-1 rolling v1 (web-41) -> v2 (web-42): succeeded"


async def test_deploy_wait_exits_7_when_it_rolls_back(cli: Cli) -> None:
    proc = await cli.start("deploy", "web", "--build", "web-42", "--wait")
    await until_line(proc, lambda line: "new ready" in line)
    book = cli.deployer.book

    def rolled_back(d: deploy_pb2.Deployment) -> None:
        d.state, d.reason = "rolled_back", "web.3 failed its health check 3 times"

    await book.change(book.deployments["web-1"], rolled_back)
    code, _, err = await finish(proc)
    assert code == ExitCode.DEPLOYMENT_FAILED, err
    assert "deployment web-1 rolled_back: web.3 failed its health check 3 times" in err
    assert "bay history web" in err


async def test_deploy_wait_gives_up_at_its_timeout(cli: Cli) -> None:
    code, _, err = await cli("deploy", "web", "--build", "web-42", "--wait", "--timeout", "0.5")
    assert code == ExitCode.NOT_READY, err
    assert "not done after 0.5s" in err and "bay rollout status web -w" in err


async def test_rollout_status_and_watch(cli: Cli) -> None:
    code, _, err = await cli("rollout", "status", "web")
    assert code == ExitCode.NOT_FOUND, err
    await cli("deploy", "web", "--build", "web-42", "--step", "share=0.25", "--step", "pause")
    code, out, err = await cli("rollout", "status", "web")
    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert out.splitlines()[0] == "web-1 canary v1 (web-41) -> v2 (web-42): running, step 1/3 share 25%"
    assert lines[1] == ["#", "step", "state", "started", "finished", "message"]
    assert lines[2][:4] == ["1", "share", "25%", "running"] and lines[3] == ["2", "pause", "pending"]
    assert "0/4 new ready" in out

    proc = await cli.start("rollout", "status", "web", "-w")
    await until_line(proc, lambda line: "step 1/3" in line)
    code, out, err = await cli("rollout", "promote", "web")
    assert (code, out.strip()) == (0, "web-1 canary v1 (web-41) -> v2 (web-42): running, step 2/3 pause"), err
    await until_line(proc, lambda line: "step 2/3 pause" in line)
    code, out, err = await cli("rollout", "promote", "web", "--all")
    assert (code, out.strip()) == (0, "web-1 canary v1 (web-41) -> v2 (web-42): succeeded"), err
    code, out, err = await finish(proc)
    assert code == 0, err
    assert out.splitlines()[-1] == "web-1 canary v1 (web-41) -> v2 (web-42): succeeded"


async def test_watch_rides_out_a_deployer_restart(cli: Cli) -> None:
    await cli("deploy", "web", "--build", "web-42")
    proc = await cli.start("rollout", "status", "web", "--watch")
    await until_line(proc, lambda line: "0/4 new ready" in line)
    book, port = cli.deployer.book, int(cli.deployer.addr.rsplit(":", 1)[1])
    await cli.deployer.stop()  # the stream breaks; the deployment goes on meanwhile
    await until_line(proc, lambda line: "the deployer" in line and "retrying" in line)
    await book.change(book.deployments["web-1"], lambda d: setattr(d, "new_ready", 2))
    cli.deployer = await start_deployer(book, port)
    await until_line(proc, lambda line: "2/4 new ready" in line)
    await book.change(book.deployments["web-1"], lambda d: setattr(d, "state", "succeeded"))
    code, out, err = await finish(proc)
    assert code == 0, err
    assert out.splitlines()[-1] == "web-1 rolling v1 (web-41) -> v2 (web-42): succeeded"


async def test_rollout_controls(cli: Cli) -> None:
    code, _, err = await cli("rollout", "pause", "web")
    assert code == ExitCode.CONFLICT and "no running deployment" in err
    await cli("deploy", "web", "--build", "web-42")
    code, out, err = await cli("rollout", "pause", "web", "--reason", "checking")
    assert (code, out.strip()) == (
        0,
        "web-1 rolling v1 (web-41) -> v2 (web-42): paused, step 1/1 roll (checking)",
    ), err
    code, out, _ = await cli("rollout", "resume", "web")
    assert out.strip() == "web-1 rolling v1 (web-41) -> v2 (web-42): running, step 1/1 roll"
    code, out, _ = await cli("rollout", "abort", "web", "--reason", "wrong build")
    assert out.strip() == "web-1 rolling v1 (web-41) -> v2 (web-42): aborted (wrong build)"
    code, out, _ = await cli("rollout", "undo", "web")
    assert out.strip().startswith("web-2 rolling v2 (web-42) -> v1 (web-41): running")
    assert [m for m, *_ in cli.deployer.book.seen if m != "GetDeployment"][-4:] == [
        "Pause",
        "Resume",
        "Abort",
        "Undo",
    ]


async def test_history_shows_deployments_beside_events(cli: Cli) -> None:
    made = await cli.stack.client.post(
        "/v1/groups", json={"name": "web", "cmd": "sleep 100"}, headers=cli.stack.operator
    )
    assert made.status_code == 201
    await cli("deploy", "web", "--build", "web-42")
    await cli("deploy", "web", "--build", "web-43", "--supersede", "--strategy", "recreate")
    code, out, err = await cli("history", "web")
    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["seq", "time", "type", "version", "actor", "summary"]
    assert lines[1][3] == "GroupCreated"
    header = lines.index(["id", "strategy", "from", "to", "state", "reason", "created", "updated"])
    rows = lines[header + 1 :]
    assert [r[:4] for r in rows] == [
        ["web-1", "rolling", "v1", "(web-41)"],
        ["web-2", "recreate", "v2", "(web-42)"],
    ]
    assert "superseded" in rows[0] and "running" in rows[1]

    await cli.deployer.stop()  # the group's own history stands without the deployer
    code, out, err = await cli("history", "web")
    assert code == 0, err
    assert "GroupCreated" in out and "web-1" not in out
    assert "deployments not shown: the deployer" in err


async def test_a_deployer_that_is_down(fresh_stream: str, tmp_path: Path) -> None:
    stack = await start_stack(fresh_stream, tmp_path)  # nothing at the deployer's address
    served = await serve(stack.gateway)
    try:
        run = Cli(
            stack, await start_deployer(), served, environment(served, stack.registry.token, tmp_path / "cli")
        )
        await run.deployer.stop()
        code, _, err = await run("deploy", "web", "--build", "web-42")
        assert code == ExitCode.UNAVAILABLE, err
        assert "the deployer" in err and "BAY_DEPLOYER_ADDR" in err
    finally:
        await served.stop()
        await stack.stop()
