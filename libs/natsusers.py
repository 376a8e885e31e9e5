"""NATS users on disk: one nkey seed per user in the data directory, and the nats-server
``authorization`` block made from them.

Layout (directory ``<data_dir>/nats-auth``, mode 0700; every file 0600)::

    services/<role>.nk   Bay's own users: registry, deployer, autoscaler, dns, gateway, audit, setup,
                         scheduler-<cluster>
    audit/<name>.nk      read-only users of audit systems outside Bay (``bay nats audit-credential``)
    metrics/<group>.nk   a group's custom metric publisher: ``bay.metric.<group>.>`` only
                         (``bay nats metrics-credential``)
    auth.conf            the authorization block nats-server includes (public keys only)

Why nkeys: the server holds only public keys, so its configuration is no secret; a client proves
its identity by signing the server's nonce, so nothing replayable travels or sits in the config.
A service is given the *path* of its seed (``BAY_NATS_NKEY_SEED``), never the seed itself.

Why a file and a reload, not a NATS account server: the users change rarely (a new cluster, a new
audit system), nats-server reloads its authorization on SIGHUP without dropping the connections of
users that still exist, and a file is what a 3-node cluster's nodes can all include. A user is
revoked by removing its seed file and writing the block again: at the reload nats-server closes
the connections of users it no longer has (tests/integration/test_nats_metrics_credential.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

import nkeys

from libs.natsperms import (
    NAME,
    NatsUser,
    audit_consumer,
    authorization_block,
    for_service,
    metric_publisher,
)

__all__ = ["NAME", "NatsUsers", "new_seed", "public_key", "reload_server", "write_private"]

AUTH_DIR = "nats-auth"
METRICS = "metrics"


def new_seed() -> bytes:
    """A fresh user nkey seed (``SU...``)."""
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def public_key(seed_file: Path) -> str:
    kp = nkeys.from_seed(bytearray(seed_file.read_bytes().strip()))
    try:
        return str(kp.public_key.decode())
    finally:
        kp.wipe()


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` readable by its owner alone (created 0600, never briefly wider)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class NatsUsers:
    """The users of one platform, in ``<data_dir>/nats-auth``."""

    def __init__(self, data_dir: Path, stream: str = "BAY_EVENTS") -> None:
        self.root = data_dir / AUTH_DIR
        self.stream = stream

    def _dir(self, kind: str) -> Path:
        d = self.root / kind
        for p in (self.root, d):
            p.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(p, 0o700)
        return d

    def _ensure(self, path: Path) -> Path:
        if not path.exists():
            write_private(path, new_seed() + b"\n")
        os.chmod(path, 0o600)
        return path

    def seed_path(self, role: str) -> Path:
        """Where the seed file of a Bay service is (see :meth:`service_seed`)."""
        for_service(role, self.stream)  # an unknown role fails here, clearly
        return self.root / "services" / f"{role}.nk"

    def service_seed(self, role: str) -> Path:
        """The seed file of a Bay service (made on first use)."""
        path = self.seed_path(role)
        self._dir("services")
        return self._ensure(path)

    def audit_seed(self, name: str) -> Path:
        """The seed file of an outside audit system ``name`` (made on first use)."""
        if not NAME.match(name):
            raise ValueError(f"audit credential name {name!r}: lowercase letters, digits and '-'")
        return self._ensure(self._dir("audit") / f"{name}.nk")

    def metrics_seed_path(self, group: str) -> Path:
        """Where the seed file of ``group``'s custom metric publisher is; a bad group name is a
        ValueError naming it (and nothing is written)."""
        metric_publisher(group)
        return self.root / METRICS / f"{group}.nk"

    def metrics_seed(self, group: str, *, rotate: bool = False) -> Path:
        """The seed file of ``group``'s custom metric publisher: made on first use, the same one
        after (``rotate``: a new seed in its place; the old one no longer connects once the block
        is written again and the server reloaded)."""
        path = self.metrics_seed_path(group)
        self._dir(METRICS)
        if rotate:
            write_private(path, new_seed() + b"\n")
        return self._ensure(path)

    def revoke_metrics(self, group: str) -> bool:
        """Remove ``group``'s publisher (its seed file); False when it had none. The server admits
        it until the block is written again and reloaded."""
        try:
            self.metrics_seed_path(group).unlink()
        except FileNotFoundError:
            return False
        return True

    def users(self, roles: Iterable[str] = ()) -> list[NatsUser]:
        """Every user: the services named (made if missing), those already on disk, the audit ones
        and the metric publishers."""
        for role in roles:
            self.service_seed(role)
        out = [
            NatsUser(p.stem, public_key(p), for_service(p.stem, self.stream))
            for p in sorted(self._dir("services").glob("*.nk"))
        ]
        out += [
            NatsUser(f"audit/{p.stem}", public_key(p), audit_consumer(self.stream))
            for p in sorted(self._dir("audit").glob("*.nk"))
        ]
        out += [  # a file of no group's name fails here, naming it: it came from no Bay command
            NatsUser(f"{METRICS}/{p.stem}", public_key(p), metric_publisher(p.stem))
            for p in sorted(self._dir(METRICS).glob("*.nk"))
        ]
        return out

    @property
    def auth_config(self) -> Path:
        return self.root / "auth.conf"

    def write_auth_config(self, roles: Iterable[str] = (), *, path: Path | None = None) -> Path:
        """Write the authorization block of every user (``path``: elsewhere, e.g. a volume the NATS
        nodes mount); the users named in ``roles`` are made first if missing."""
        target = path or self.auth_config
        write_private(target, authorization_block(self.users(roles)).encode())
        return target


def reload_server(pidfile: Path) -> int | None:
    """SIGHUP the nats-server whose pid is in ``pidfile`` (it re-reads its configuration); its pid,
    or None when none runs. Only a process that is nats-server is signalled."""
    try:
        pid = int(pidfile.read_text().strip())
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, ValueError):
        return None
    if not argv0.endswith(b"nats-server"):
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    return pid
