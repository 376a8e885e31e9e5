"""Deployer settings (``BAY_*`` environment variables)."""

from pathlib import Path

from pydantic import Field

from libs import defaults
from libs.settings import CommonSettings


class DeployerSettings(CommonSettings):
    metrics_listen: str = Field(
        defaults.DEPLOYER_METRICS_ADDRESS, description='its Prometheus /metrics host:port ("": none)'
    )
    deployer_listen: str = Field(defaults.DEPLOYER_ADDRESS, description="where the deployer's gRPC listens")
    dns_addr: str = Field(
        "",
        description="the DNS service's gRPC address: a migration waits until DNS answers the new "
        "tasks; empty: readiness alone",
    )
    deployer_token_file: Path | None = Field(
        None, description="the operator token the deployer calls the registry with; default "
        "<data_dir>/deployer.token (made in the tokens file on first start)",
    )  # fmt: skip
    anonymous_read: bool = Field(False, description="allow reads without a token")
    registry_timeout_seconds: float = Field(5.0, gt=0, description="how long a registry call may take")
