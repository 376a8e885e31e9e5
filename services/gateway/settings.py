"""Gateway settings (``BAY_*`` environment variables), read once at start-up."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from libs.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_listen: str = Field("127.0.0.1:8080", description="host:port the REST API listens on")
    database_url: str = Field("", description="SQL read models (audit); default sqlite:///<data_dir>/bay.db")
    anonymous_read: bool = Field(False, description="allow GET requests without a token")
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="largest request body accepted")
    registry_timeout_seconds: float = Field(3.0, gt=0, description="deadline of every registry call")
    sse_heartbeat_seconds: float = Field(15.0, gt=0, description="idle time before an SSE keep-alive")

    @field_validator("gateway_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"must be host:port (e.g. 127.0.0.1:8080), not {value!r}")
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
