"""A child that Bay forks (to exec a task, a fetcher, a check) runs no gRPC threads before its exec.

With gRPC's fork handlers on, a fork of a process that has used gRPC restarts gRPC's threads in the
child too; a fetcher forked by the scheduler then died of SIGSEGV before its exec (``libs/forksafe``).
The child here counts its threads at once after the fork, before it does anything else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD_THREADS = """
import os, sys
import {package}  # a Bay process imports its package first
import grpc

channel = grpc.insecure_channel("127.0.0.1:1")  # gRPC's core and its threads at work
try:
    grpc.channel_ready_future(channel).result(timeout=0.2)
except grpc.FutureTimeoutError:
    pass
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, str(len(os.listdir("/proc/self/task"))).encode())
    os._exit(0)
os.close(w)
print(os.read(r, 16).decode())
os.waitpid(pid, 0)
"""


@pytest.mark.parametrize("package", ["services", "tests", "bench"])
def test_a_forked_child_of_a_bay_process_has_one_thread(package: str) -> None:
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "true"}  # an operator's setting does not win
    out = subprocess.run(
        [sys.executable, "-c", CHILD_THREADS.format(package=package)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "1", out.stderr
