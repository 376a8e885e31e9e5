"""How a Bay process proves who it is to NATS, the standard NATS ways: user and password (in the URL
or apart), an nkey seed file, or a ``.creds`` file (a user JWT and its seed). Files are named by
path; their contents are read when connecting and never logged. :func:`redact_url` is what a log
line may say of a URL.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nkeys

_CREDS_BLOCK = re.compile(r"-{3,}BEGIN [A-Z ]+-{3,}\s*\n\s*(\S+)\s*\n\s*-{3,}END [A-Z ]+-{3,}")


def redact_url(url: str) -> str:
    """``url`` (or a comma separated list of them) with any user and password taken out."""
    out = []
    for one in url.split(","):
        one = one.strip()
        parts = urlsplit(one if "://" in one else f"nats://{one}")
        if parts.username is None and parts.password is None:
            out.append(one)
            continue
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        out.append(urlunsplit(parts._replace(netloc=netloc)))
    return ",".join(out)


@dataclass(frozen=True)
class NatsCredentials:
    """At most one way: a creds file, an nkey seed file, or a user (with a password)."""

    user: str = ""
    password: str = ""
    nkey_seed: Path | None = None
    creds: Path | None = None

    def __post_init__(self) -> None:
        given = [
            n for n, v in (("creds", self.creds), ("nkey_seed", self.nkey_seed), ("user", self.user)) if v
        ]
        if len(given) > 1:
            raise ValueError(f"NATS credentials: give one of {' or '.join(given)}, not both")
        if self.password and not self.user:
            raise ValueError("NATS credentials: a password needs a user")

    def __repr__(self) -> str:  # never the password
        return f"NatsCredentials({self.describe()})"

    def describe(self) -> str:
        if self.creds:
            return f"creds file {self.creds}"
        if self.nkey_seed:
            return f"nkey seed {self.nkey_seed}"
        if self.user:
            return f"user {self.user}"
        return "no credentials"

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.connect`` (which reads the files itself, on every connect)."""
        if self.creds:
            return {"user_credentials": str(self.creds)}
        if self.nkey_seed:
            return {"nkeys_seed": str(self.nkey_seed)}
        if self.user:
            return {"user": self.user, "password": self.password}
        return {}

    def connect_fields(self, nonce: str | None) -> dict[str, str]:
        """The auth fields of a raw ``CONNECT`` (the bulk reader's own connection)."""
        if self.user:
            return {"user": self.user, "pass": self.password}
        if nonce is None or not (self.creds or self.nkey_seed):
            return {}
        if self.creds:
            text = self.creds.read_text()
            blocks = _CREDS_BLOCK.findall(text)
            if len(blocks) < 2:
                raise ValueError(f"{self.creds} is not a NATS .creds file (a JWT and a seed)")
            jwt, seed = blocks[0], blocks[1]
            return {"jwt": jwt, "sig": _sign(seed.encode(), nonce)}
        assert self.nkey_seed is not None
        seed_bytes = self.nkey_seed.read_bytes().strip()
        kp = nkeys.from_seed(bytearray(seed_bytes))
        try:
            key = kp.public_key.decode()
        finally:
            kp.wipe()
        return {"nkey": key, "sig": _sign(seed_bytes, nonce)}


def _sign(seed: bytes, nonce: str) -> str:
    kp = nkeys.from_seed(bytearray(seed))
    try:
        return base64.urlsafe_b64encode(kp.sign(nonce.encode())).rstrip(b"=").decode()
    finally:
        kp.wipe()
