"""``bay up``'s nats-server admits only Bay's users: an unauthenticated client (a task, any local
process) is refused, the credentials are files of the platform alone, never on a command line, and
the services do their work with their own users (nats-server reports no permission they lack)."""

from __future__ import annotations

import stat
from pathlib import Path

import nats
import nats.errors
import pytest

from tests.e2e.harness import BayUp

DEADLINE = 30.0


def modes(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """The directories and the files under ``root`` (itself included) with their permission bits."""
    dirs: dict[str, int] = {}
    files: dict[str, int] = {}
    for path in [root, *root.rglob("*")]:
        (dirs if path.is_dir() else files)[str(path)] = stat.S_IMODE(path.stat().st_mode)
    return dirs, files


def violations(data_dir: Path) -> list[str]:
    log = (data_dir / "nats" / "nats.log").read_text(errors="replace")
    return [line for line in log.splitlines() if "Violation" in line]


def seeds(data_dir: Path) -> list[str]:
    return [p.read_text().strip() for p in (data_dir / "nats-auth").rglob("*.nk")]


def process_text(pid: int) -> str:
    """A process's command line and environment, as another process of its user could read them."""
    proc = Path(f"/proc/{pid}")
    return (proc / "cmdline").read_bytes().decode(errors="replace") + (proc / "environ").read_bytes().decode(
        errors="replace"
    )


async def test_an_unauthenticated_connection_is_refused(bay: BayUp) -> None:
    port = bay.env["BAY_NATS_PORT"]
    # no credentials (a task has none), then a user nats-server was never told of
    for url in (f"nats://127.0.0.1:{port}", f"nats://bay:guess@127.0.0.1:{port}"):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


async def test_credentials_are_the_platforms_alone(bay: BayUp) -> None:
    dirs, files = modes(bay.data_dir / "nats-auth")
    assert set(dirs.values()) == {0o700}, dirs
    assert files and set(files.values()) == {0o600}, files
    assert {Path(p).name for p in files} >= {
        "setup.nk", "registry.nk", "scheduler-local.nk", "dns.nk", "gateway.nk", "audit.nk", "auth.conf"
    }  # fmt: skip
    conf = bay.data_dir / "nats" / "nats.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert stat.S_IMODE((bay.data_dir / "nats").stat().st_mode) == 0o700
    secrets = seeds(bay.data_dir)
    assert len(secrets) >= 6
    shown = "\n".join(bay.lines) + (bay.data_dir / "nats-auth" / "auth.conf").read_text()
    for pid in bay.pids().values():
        shown += process_text(pid)
    assert not [s for s in secrets if s in shown], "a seed is in an output, a config or a process's arguments"
    # each service is given its own seed, by path
    registry = process_text(bay.pids()["registry"])
    assert (
        f"BAY_NATS_NKEY_SEED={bay.data_dir.resolve() / 'nats-auth' / 'services' / 'registry.nk'}" in registry
    )


async def test_services_work_within_their_permissions(bay: BayUp) -> None:
    spec = bay.cwd / "perm.yaml"
    spec.write_text("name: e2e-perm\ncmd: sleep 600\ninstances: 0\n")
    code, _, err = await bay.cli("apply", "-f", str(spec))
    assert code == 0, err
    code, _, err = await bay.cli("scale", "e2e-perm", "2", "--wait", timeout=DEADLINE)
    assert code == 0, err
    code, _, err = await bay.cli("scale", "e2e-perm", "0", "--wait", timeout=DEADLINE)
    assert code == 0, err
    assert violations(bay.data_dir) == []
