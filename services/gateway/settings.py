"""Gateway settings (``BAY_*`` environment variables), read once at start-up."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from libs.settings import CommonSettings
from libs.spec import DNS_LABEL_RE


def _check_host_port(value: str, example: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be host:port (e.g. {example}), not {value!r}")
    return value


class GatewaySettings(CommonSettings):
    gateway_listen: str = Field("127.0.0.1:8080", description="host:port the REST API listens on")
    database_url: str = Field("", description="SQL read models (audit); default sqlite:///<data_dir>/bay.db")
    anonymous_read: bool = Field(False, description="allow GET requests without a token")
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="largest request body accepted")
    registry_timeout_seconds: float = Field(3.0, gt=0, description="deadline of every registry call")
    sse_heartbeat_seconds: float = Field(15.0, gt=0, description="idle time before an SSE keep-alive")
    schedulers: dict[str, str] = Field(
        default_factory=lambda: {"local": "127.0.0.1:50061"},
        description='each cluster\'s scheduler host:port, JSON: {"local": "127.0.0.1:50061", "eu": "..."}',
    )
    scheduler_timeout_seconds: float = Field(
        2.0, gt=0, description="deadline of every scheduler call (a stream: of its first answer)"
    )
    dns_addr: str = Field("127.0.0.1:50071", description="the DNS service's gRPC host:port (its listing)")
    dns_timeout_seconds: float = Field(2.0, gt=0, description="deadline of every DNS service call")

    @field_validator("gateway_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return _check_host_port(value, "127.0.0.1:8080")

    @field_validator("dns_addr")
    @classmethod
    def _dns_addr(cls, value: str) -> str:
        return _check_host_port(value, "127.0.0.1:50071")

    @field_validator("schedulers")
    @classmethod
    def _scheduler_addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for cluster, addr in value.items():
            if not re.match(DNS_LABEL_RE, cluster):
                raise ValueError(f"{cluster!r} is not a cluster name")
            _check_host_port(addr, "127.0.0.1:50061")
        return value

    @model_validator(mode="after")
    def _default_database(self) -> GatewaySettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'bay.db').resolve()}"
        return self

    def listen_address(self) -> tuple[str, int]:
        """``gateway_listen`` as (host, port); ``[::1]:8080`` works too."""
        host, _, port = self.gateway_listen.rpartition(":")
        return host.strip("[]"), int(port)
