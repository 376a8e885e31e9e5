"""``bay apply -f`` on a real YAML alias bomb, in a process whose address space is capped at 1 GiB:
it fails fast with a clear message and never expands the bomb (before issue 10 it built a 571 MB
body and 1.7 GB of memory before the gateway's 413)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from libs.natsserver import free_port
from services.cli.errors import ExitCode
from tests.unit.test_cli_yaml_aliases import alias_bomb

MEMORY_CAP = 1024 * 1024 * 1024


# The cap is set by the shell that execs the CLI, not by a preexec_fn: that forks this process (which
# runs gRPC), and gRPC's fork handlers could abort the child before it ever ran the CLI.
CAPPED = f'ulimit -v {MEMORY_CAP // 1024} && exec "$0" "$@"'


def test_bay_apply_refuses_an_alias_bomb_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAY_")}
    env |= {
        "BAY_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
        "BAY_TOKEN": "t",
        "BAY_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.run(
        ["/bin/sh", "-c", CAPPED, sys.executable, "-m", "services.cli", "apply", "-f", str(bomb)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == ExitCode.USAGE, (proc.returncode, proc.stderr[-2000:])
    said = " ".join(proc.stderr.split())  # the terminal width may wrap it
    assert "bomb.yaml: line " in said and "aliases expand to more than" in said, said
    assert "MemoryError" not in said
