"""Bearer tokens with roles: viewer < operator < admin.

Tokens live hashed (SHA-256) in a JSON file, ``<data_dir>/tokens.json`` by default; the plain token
is shown once, when it is made. The file is re-read when it changes, so ``bay token create`` takes
effect without restarts. Tokens are never logged and never put in events: an event names the
token's ``name`` as its actor.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from libs.errors import PermissionDenied, Unauthenticated

ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def require(self, role: str) -> Principal:
        if ROLES.index(self.role) < ROLES.index(role):
            raise PermissionDenied(f"token {self.name!r} has role {self.role}; this needs {role}")
        return self


ANONYMOUS = Principal("anonymous", "viewer")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "bay_" + secrets.token_urlsafe(32)


class TokenStore:
    def __init__(self, path: Path, *, anonymous_read: bool = False) -> None:
        self.path = path
        self.anonymous_read = anonymous_read
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._by_digest: dict[str, Principal] = {}

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._by_digest, self._stamp = {}, None
            return
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return
        entries = json.loads(self.path.read_text() or "{}").get("tokens", [])
        self._by_digest = {e["sha256"]: Principal(e["name"], e["role"]) for e in entries}
        self._stamp = stamp

    def authenticate(self, authorization: str | None, *, needed: str = "viewer") -> Principal:
        """The principal behind an ``Authorization`` value, allowed at least ``needed``."""
        if not authorization:
            if needed == "viewer" and self.anonymous_read:
                return ANONYMOUS
            raise Unauthenticated("no token: send `Authorization: Bearer <token>`")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization value must be `Bearer <token>`")
        with self._lock:
            self._reload()
            principal = self._by_digest.get(_digest(token.strip()))
        if principal is None:
            raise Unauthenticated("unknown token")
        return principal.require(needed)

    def create(self, name: str, role: str) -> str:
        """Add a token and return it in plain text (the only time it is visible)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = new_token()
        with self._lock:
            data = json.loads(self.path.read_text()) if self.path.exists() else {"tokens": []}
            data["tokens"] = [e for e in data["tokens"] if e["name"] != name]
            data["tokens"].append({"name": name, "role": role, "sha256": _digest(token)})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            self._stamp = None
        return token

    def names(self) -> list[Principal]:
        with self._lock:
            self._reload()
            return sorted(self._by_digest.values(), key=lambda p: p.name)


def ensure_token_file(data_dir: Path, store: TokenStore, name: str, role: str) -> str:
    """The plain token kept at ``<data_dir>/<name>.token``, made on first use (mode 0600)."""
    path = data_dir / f"{name}.token"
    if path.exists():
        token = path.read_text().strip()
        try:
            store.authenticate(f"Bearer {token}", needed=role)
            return token
        except (Unauthenticated, PermissionDenied):
            pass  # the tokens file was replaced: make a new one
    token = store.create(name, role)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def service_token(token_file: Path | None, data_dir: Path, store: TokenStore, name: str) -> str:
    """The operator token a service (the deployer, the autoscaler) calls the registry with: the file
    given (``BAY_<NAME>_TOKEN_FILE``), else one it keeps in ``<data_dir>/<name>.token``, made in the
    shared tokens file on first start."""
    if token_file is not None:
        return token_file.read_text().strip()
    return ensure_token_file(data_dir, store, name, "operator")
