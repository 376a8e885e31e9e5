"""``python -m bench [NAME...]``: run the benchmarks (all by default), print them, save them as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

from bench.autoscale import run_autoscale_local, run_autoscale_mesos, run_autoscale_noisy
from bench.autoscale_model import run_autoscale_model
from bench.deploy import run_deploy_local, run_deploy_local_light, run_deploy_mesos, run_deploy_switch
from bench.dns import run_dns, run_dns_10k, run_dns_freshness
from bench.dns_switch import run_dns_switch
from bench.gateway import run_gateway
from bench.metrics import run_metrics
from bench.replay import HistorySession, run_replay, run_restart
from bench.report import Result
from bench.scale import run_scale
from bench.scheduler import run_local_scale, run_mesos_cpu_table, run_mesos_scale, run_placement_table

NAMES = (
    "replay",
    "restart",
    "scale",
    "gateway",
    "local-scale",
    "mesos-scale",
    "placement",
    "mesos-cpu",
    "dns",
    "dns-10k",
    "dns-freshness",
    "dns-switch",
    "deploy-local",
    "deploy-local-light",
    "deploy-switch",
    "deploy-mesos",
    "autoscale-model",
    "autoscale-local",
    "autoscale-noisy",
    "autoscale-mesos",
    "metrics",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run, in order (default: all of {', '.join(NAMES)})",
    )
    p.add_argument("--events", type=int, default=1_000_000, help="history length for replay/restart")
    p.add_argument("--calls", type=int, default=5_000, help="ScaleGroup calls for scale")
    p.add_argument("--clients", type=int, default=8, help="concurrent gRPC clients for scale")
    p.add_argument("--groups", type=int, default=1_000, help="groups for gateway")
    p.add_argument("--workers", type=int, default=32, help="concurrent HTTP workers for gateway")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of HTTP load for gateway")
    p.add_argument("--switches", type=int, default=50, help="rollout changes of each kind for dns-switch")
    p.add_argument(
        "--noisy-seconds", type=float, default=180.0, help="seconds of noisy steady load for autoscale-noisy"
    )
    p.add_argument("--out", type=Path, default=Path(".bay/bench-results.json"), help="JSON results file")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(NAMES)})")
    return args


async def run(args: argparse.Namespace) -> list[Result]:
    session = HistorySession(args.events)
    benches: dict[str, Callable[[], Awaitable[Result]]] = {
        "replay": lambda: run_replay(session),
        "restart": lambda: run_restart(session),
        "scale": lambda: run_scale(args.calls, args.clients),
        "gateway": lambda: run_gateway(args.groups, args.workers, args.duration),
        "local-scale": lambda: run_local_scale(),
        "mesos-scale": lambda: run_mesos_scale(),
        "placement": lambda: run_placement_table(),
        "mesos-cpu": lambda: run_mesos_cpu_table(),
        "dns": lambda: run_dns(),
        "dns-10k": lambda: run_dns_10k(),
        "dns-freshness": lambda: run_dns_freshness(),
        "dns-switch": lambda: run_dns_switch(args.switches),
        "deploy-local": lambda: run_deploy_local(),
        "deploy-local-light": lambda: run_deploy_local_light(),
        "deploy-switch": lambda: run_deploy_switch(),
        "deploy-mesos": lambda: run_deploy_mesos(),
        "autoscale-model": lambda: run_autoscale_model(),
        "autoscale-local": lambda: run_autoscale_local(),
        "autoscale-noisy": lambda: run_autoscale_noisy(args.noisy_seconds),
        "autoscale-mesos": lambda: run_autoscale_mesos(),
        "metrics": lambda: run_metrics(args.groups),
    }
    results = []
    try:
        for name in args.names or NAMES:
            started = time.perf_counter()
            try:
                result = await benches[name]()
            except Exception as exc:  # a broken benchmark is reported; the others still run
                traceback.print_exc()
                result = Result(name, "failed", error=f"{type(exc).__name__}: {exc}")
            result.params["wall time"] = f"{time.perf_counter() - started:.1f} s"
            print(result.render() + "\n", flush=True)
            results.append(result)
    finally:
        await session.close()
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bay.nats").setLevel(logging.ERROR)  # closing connections at the end is expected
    results = uvloop.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": [r.to_json() for r in results],
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
