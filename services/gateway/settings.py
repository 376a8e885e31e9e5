"""Gateway settings (``BAY_*`` environment variables), read once at start-up."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from libs import defaults
from libs.addresses import parse_host_port
from libs.errors import ValidationFailed
from libs.settings import CommonSettings
from libs.spec import DNS_LABEL_RE


def _check_host_port(value: str, *, listen: bool = False, of: str = "") -> str:
    try:
        parse_host_port(value, allow_zero=listen)
    except ValidationFailed as exc:  # pydantic names the variable; it wants a ValueError
        raise ValueError(f"{of}{exc.violations[0].description}") from None
    return value


#: a Prometheus label name that is not reserved (``__...`` names are Prometheus' own)
LABEL_NAME_RE = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class MetricsTarget(BaseModel):
    """A Bay process's /metrics, as service discovery lists it (``BAY_METRICS_TARGETS``' items)."""

    model_config = ConfigDict(extra="forbid")
    address: str
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _check_host_port(value, of="a metrics target's address: ")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(LABEL_NAME_RE, name) or name.startswith("__"):
                raise ValueError(f"{name!r} is not a Prometheus label name of one's own")
        return value


class GatewaySettings(CommonSettings):
    gateway_listen: str = Field(defaults.GATEWAY_ADDRESS, description="host:port the REST API listens on")
    database_url: str = Field("", description="SQL read models (audit); default sqlite:///<data_dir>/bay.db")
    anonymous_read: bool = Field(False, description="allow GET requests without a token")
    max_body_bytes: int | None = Field(
        None,
        gt=0,
        description="largest request body accepted; default (and most): what fits in one NATS message "
        "with the event's envelope, from the server's max_payload",
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="a connection whose request headers take longer is closed"
    )
    registry_timeout_seconds: float = Field(3.0, gt=0, description="deadline of every registry call")
    sse_heartbeat_seconds: float = Field(15.0, gt=0, description="idle time before an SSE keep-alive")
    usage_keep_seconds: float = Field(
        3600.0, gt=0, le=86400, description="how long the group page's CPU and memory charts look back"
    )
    schedulers: dict[str, str] = Field(
        default_factory=lambda: {"local": defaults.SCHEDULER_ADDRESS},
        description=f'each cluster\'s scheduler host:port, JSON: {{"local": "{defaults.SCHEDULER_ADDRESS}", '
        '"eu": "..."}',
    )
    scheduler_timeout_seconds: float = Field(
        2.0, gt=0, description="deadline of every scheduler call (a stream: of its first answer)"
    )
    dns_addr: str = Field(
        defaults.DNS_GRPC_ADDRESS, description="the DNS service's gRPC host:port (its listing)"
    )
    dns_timeout_seconds: float = Field(2.0, gt=0, description="deadline of every DNS service call")
    deployer_addr: str = Field(defaults.DEPLOYER_ADDRESS, description="the deployer's gRPC host:port")
    deployer_timeout_seconds: float = Field(
        3.0, gt=0, description="deadline of every deployer call (a stream: of its first answer)"
    )

    autoscaler_addr: str = Field(defaults.AUTOSCALER_ADDRESS, description="the autoscaler's gRPC host:port")
    autoscaler_timeout_seconds: float = Field(3.0, gt=0, description="deadline of every autoscaler call")
    alertmanager_url: str = Field(
        "",
        pattern=r"^(https?://\S+)?$",
        description="the Alertmanager GET /v1/alerts reads (http://host:port); empty: none",
    )
    alertmanager_timeout_seconds: float = Field(
        3.0, gt=0, description="deadline of every Alertmanager call (then 503)"
    )

    metrics_targets: list[MetricsTarget] = Field(
        default_factory=list,
        description='the Bay processes service discovery lists, JSON: [{"address": "127.0.0.1:9310", '
        '"labels": {"bay_service": "registry"}}, ...] (`bay up` fills it)',
    )

    ui_session_seconds: float = Field(
        8 * 3600.0, gt=0, description="a web UI session ends after this long without a request"
    )
    ui_login_failures: int = Field(
        5, ge=1, description="failed web UI log-ins allowed per client address within the window"
    )
    ui_login_window_seconds: float = Field(
        60.0, gt=0, description="the window of BAY_UI_LOGIN_FAILURES (then 429 until it passes)"
    )

    @field_validator("gateway_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return _check_host_port(value, listen=True)

    @field_validator("dns_addr", "deployer_addr", "autoscaler_addr")
    @classmethod
    def _dns_addr(cls, value: str) -> str:
        return _check_host_port(value)

    @field_validator("schedulers")
    @classmethod
    def _scheduler_addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for cluster, addr in value.items():
            if not re.match(DNS_LABEL_RE, cluster):
                raise ValueError(f"{cluster!r} is not a cluster name")
            _check_host_port(addr, of=f"the scheduler of {cluster!r}: ")
        return value

    @model_validator(mode="after")
    def _default_database(self) -> GatewaySettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'bay.db').resolve()}"
        return self

    def listen_address(self) -> tuple[str, int]:
        """``gateway_listen`` as (host, port); ``[::1]:8080`` works too."""
        return parse_host_port(self.gateway_listen, field="BAY_GATEWAY_LISTEN", allow_zero=True)
