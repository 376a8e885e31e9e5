"""``bay autoscale set|get|off|status|list``: the real CLI (a process) against a real gateway (uvicorn)
and registry, with a fake autoscaler (a real grpc.aio server) that records what it was sent."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from bay.v1 import autoscale_pb2

from services.cli.errors import ExitCode
from tests.integration.autoscaler_fake import FakeAutoscaler, sample_status, start_autoscaler
from tests.integration.gateway_harness import ServedGateway, Stack, serve, start_stack

pytestmark = pytest.mark.timeout(120)

BAY = str(Path(sys.executable).parent / "bay")
DEADLINE = 30.0


@dataclass
class Cli:
    stack: Stack
    autoscaler: FakeAutoscaler
    served: ServedGateway
    env: dict[str, str]

    async def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            BAY, *args, env=self.env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), DEADLINE)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), " ".join(err.decode().split())

    def requests(self, method: str) -> list[object]:
        return [r for m, r, _, _ in self.autoscaler.book.seen if m == method]


@pytest_asyncio.fixture
async def cli(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Cli]:
    autoscaler = await start_autoscaler()
    stack = await start_stack(fresh_stream, tmp_path, autoscaler_addr=autoscaler.addr)
    served = await serve(stack.gateway)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
    env |= {
        "BAY_GATEWAY_URL": served.url,
        "BAY_TOKEN": stack.registry.token,
        "BAY_DATA_DIR": str(tmp_path / "cli"),
        "COLUMNS": "200",
    }
    try:
        yield Cli(stack, autoscaler, served, env)
    finally:
        await served.stop()
        await stack.stop()
        await autoscaler.stop()


async def test_set_sends_the_flags_as_a_policy(cli: Cli) -> None:
    code, out, err = await cli(
        "autoscale", "set", "web", "--min", "2", "--max", "10", "--cpu", "0.6",
        "--metric", "rps=50,per_task=false",
        "--prometheus", "latency=0.25,port=http,metric=http_latency,label.route=/",
        "--backlog", "jobs/worker=100,activation=1", "--down-window", "120", "--down-max-percent", "50",
        "--up-window", "10", "--tolerance", "0.05", "--reason", "load test",
        "--up-stable-window", "20", "--down-min-step", "3", "--panic-threshold", "3",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == (
        "autoscaling web: 2..10 instances on cpu 0.6, rps 50, latency (prometheus http) 0.25, "
        "backlog (jobs/worker) 100"
    )
    (sent,) = cli.requests("SetPolicy")
    assert isinstance(sent, autoscale_pb2.SetPolicyRequest)
    p = sent.policy
    assert (p.group, p.min, p.max, p.tolerance, sent.options.reason) == ("web", 2, 10, 0.05, "load test")
    assert sent.options.idempotency_key  # the CLI's own: a retry is harmless
    cpu, rps, latency, backlog = p.metrics
    assert (cpu.kind, cpu.target) == ("cpu", 0.6)
    assert (rps.kind, rps.name, rps.target, rps.pushed, rps.per_task) == ("custom", "rps", 50, True, False)
    prom = latency.prometheus
    assert (prom.port_name, prom.metric, prom.path, dict(prom.labels)) == (
        "http", "http_latency", "", {"route": "/"},
    )  # fmt: skip
    assert (backlog.kind, backlog.backlog.stream, backlog.backlog.consumer, backlog.activation) == (
        "backlog", "jobs", "worker", 1,
    )  # fmt: skip
    assert (p.down.window_seconds, p.down.max_percent, p.up.window_seconds) == (120, 50, 10)
    assert (p.up.stable_window_seconds, p.down.min_step, p.up.panic_threshold) == (20, 3, 3)
    assert not p.down.HasField("cooldown_seconds") and not p.up.HasField("cooldown_seconds")


async def test_get_prints_what_set_f_takes_back(cli: Cli, tmp_path: Path) -> None:
    assert (await cli("autoscale", "set", "web", "--min", "1", "--max", "4", "--memory", "0.8"))[0] == 0
    code, out, err = await cli("autoscale", "get", "web")
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert (doc["group"], doc["min"], doc["max"], doc["metrics"][0]["kind"]) == ("web", 1, 4, "memory")
    code, out, _ = await cli("autoscale", "get", "web", "-o", "json")
    assert json.loads(out)["metrics"][0]["target"] == 0.8

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({**doc, "max": 6}))
    code, out, err = await cli("autoscale", "set", "web", "-f", str(path), "--min", "2")
    assert code == 0, err
    last = cli.requests("SetPolicy")[-1]
    assert isinstance(last, autoscale_pb2.SetPolicyRequest)
    assert (last.policy.min, last.policy.max, last.policy.metrics[0].target) == (2, 6, 0.8)
    code, out, err = await cli("autoscale", "set", "web", "-f", "-", stdin=json.dumps({**doc, "max": 7}))
    assert code == 0 and "1..7" in out, err


async def test_bad_input_names_the_flag_or_the_field(cli: Cli) -> None:
    code, _, err = await cli("autoscale", "set", "web", "--min", "1", "--max", "3", "--metric", "rps=lots")
    assert code == ExitCode.USAGE and "--metric rps=lots: 'lots' is not a number" in err, err
    code, _, err = await cli("autoscale", "set", "web", "--min", "1", "--max", "3", "--backlog", "jobs=5")
    assert code == ExitCode.USAGE and "--backlog jobs=5: give STREAM/CONSUMER=TARGET" in err, err
    code, _, err = await cli("autoscale", "set", "web", "--min", "1", "--max", "3", "--prometheus", "x=1")
    assert code == ExitCode.USAGE and "give port=PORT" in err, err
    code, _, err = await cli("autoscale", "set", "web", "--min", "1", "--max", "3", "--metric", "a=1,size=2")
    assert code == ExitCode.USAGE and "unknown option 'size=2'" in err, err
    code, _, err = await cli("autoscale", "set", "web", "--max", "3")
    assert code == ExitCode.USAGE and "--min" in err and "a metric" in err, err
    code, _, err = await cli("autoscale", "set", "web", "--min", "1", "--max", "3", "--cpu", "2")
    assert code == ExitCode.USAGE and "--cpu" in err, err
    assert cli.requests("SetPolicy") == []  # none of them was sent

    code, _, err = await cli("autoscale", "set", "web", "--min", "5", "--max", "3", "--cpu", "0.5")
    assert code == ExitCode.USAGE and "max: must be at least min (5), not 3" in err, err
    code, _, err = await cli("autoscale", "set", "web", "--min", "1", "--max", "3", "--backlog", "other/c=5")
    assert code == ExitCode.USAGE and "metrics.0.backlog.stream: no stream 'other'" in err, err


async def test_status_off_and_list(cli: Cli) -> None:
    code, _, err = await cli("autoscale", "status", "web")
    assert code == ExitCode.NOT_FOUND and "not autoscaled" in err, err
    assert (await cli("autoscale", "set", "web", "--min", "2", "--max", "10", "--cpu", "0.6"))[0] == 0
    assert (await cli("autoscale", "set", "api", "--min", "1", "--max", "3", "--metric", "rps=20"))[0] == 0
    cli.autoscaler.book.statuses["web"] = sample_status("web")

    code, out, err = await cli("autoscale", "status", "web")
    assert code == 0, err
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert lines[0] == "web: 4 instances (3 ready), min 2 max 10"
    assert "metric value target recommends note" in lines
    assert "cpu 0.83 0.6 5" in lines and "queue no data 100 - no data" in lines
    assert "recommendation: 5" in lines
    assert "2027-01-15 08:01:30 2→4 proportional cpu" in lines
    assert "2027-01-15 08:00:00 3→2 step limit" in lines
    assert lines[-1] == "now: cooldown until 12:04:31"
    code, out, _ = await cli("autoscale", "status", "web", "-o", "json")
    assert json.loads(out)["decisions"][0]["rule"] == "proportional cpu"

    code, out, err = await cli("autoscale", "list")
    assert code == 0, err
    rows = [" ".join(line.split()) for line in out.splitlines()]
    assert rows == ["group min max metrics", "api 1 3 rps=20", "web 2 10 cpu=0.6"]

    code, out, err = await cli("autoscale", "off", "web")
    assert (code, out.strip()) == (0, "web: autoscaling off; its count stays"), err
    code, out, _ = await cli("autoscale", "off", "web")
    assert (code, out.strip()) == (0, "web was not autoscaled")
    (sent, *_) = cli.requests("RemovePolicy")
    assert isinstance(sent, autoscale_pb2.RemovePolicyRequest) and sent.options.idempotency_key


async def test_an_autoscaler_that_is_down_says_how_to_start_it(cli: Cli) -> None:
    await cli.autoscaler.stop()
    code, _, err = await cli("autoscale", "list")
    assert code == ExitCode.UNAVAILABLE and "the autoscaler" in err and "BAY_AUTOSCALER_ADDR" in err, err
