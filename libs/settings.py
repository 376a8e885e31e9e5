"""Settings shared by every service: one typed object read once at start-up and passed down.

Each service subclasses :class:`CommonSettings`; every field is a ``BAY_*`` environment variable
(``nats_url`` is ``BAY_NATS_URL``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs import defaults
from libs.addresses import parse_host_port
from libs.errors import ValidationFailed
from libs.natscreds import NatsCredentials


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAY_", extra="ignore")

    nats_url: str = Field(defaults.NATS_URL, description="NATS server(s), comma separated")
    nats_user: str = Field("", description="NATS user (or in the URL: nats://user:pass@host)")
    nats_password: SecretStr = Field(SecretStr(""), description="the NATS user's password")
    nats_nkey_seed: Path | None = Field(None, description="file holding this process's NATS nkey seed")
    nats_creds: Path | None = Field(None, description="NATS .creds file (user JWT and seed)")
    data_dir: Path = Field(Path(".bay"), description="where snapshots, tokens and SQLite live")
    stream: str = Field("BAY_EVENTS", description="JetStream stream holding every domain event")
    stream_replicas: int = Field(1, ge=1, le=5, description="JetStream replicas (3 in production)")
    duplicate_window_seconds: float = Field(120.0, gt=0, description="Nats-Msg-Id dedupe window")
    request_timeout_seconds: float = Field(2.0, gt=0, description="how long an append may wait")
    registry_addr: str = Field(defaults.REGISTRY_ADDRESS, description="registry gRPC address")
    tokens_file: Path | None = Field(None, description="token file; default <data_dir>/tokens.json")
    log_level: str = Field("INFO")
    metrics_listen: str = Field(
        "",
        description='host:port of this process\'s Prometheus /metrics ("": none); each service '
        "has its default (libs/defaults.py)",
    )

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen(cls, value: str) -> str:
        if value.strip():
            try:
                parse_host_port(value, allow_zero=True, field="BAY_METRICS_LISTEN")
            except ValidationFailed as exc:  # pydantic names the variable; it wants a ValueError
                raise ValueError(exc.violations[0].description) from None
        return value.strip()

    def nats_credentials(self) -> NatsCredentials:
        """How this process authenticates to NATS (none: the URL's user, if any)."""
        return NatsCredentials(
            self.nats_user, self.nats_password.get_secret_value(), self.nats_nkey_seed, self.nats_creds
        )

    def resolved_tokens_file(self) -> Path:
        return self.tokens_file or self.data_dir / "tokens.json"
