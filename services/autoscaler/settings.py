"""Autoscaler settings (``BAY_*`` environment variables)."""

from pathlib import Path

from pydantic import Field

from libs import defaults
from libs.settings import CommonSettings


class AutoscalerSettings(CommonSettings):
    metrics_listen: str = Field(
        defaults.AUTOSCALER_METRICS_ADDRESS, description='its Prometheus /metrics host:port ("": none)'
    )
    autoscaler_listen: str = Field(
        defaults.AUTOSCALER_ADDRESS, description="where the autoscaler's gRPC listens"
    )
    autoscaler_tick_seconds: float = Field(1.0, gt=0, description="how often each group is evaluated")
    autoscaler_snapshot_seconds: float = Field(
        15.0, gt=0, description="at most one window snapshot per group this often"
    )
    autoscaler_usage_seconds: float = Field(
        2.0, gt=0, description="a task's cpu/memory is the mean of its samples over this long (short: "
        "the policy's windows and tolerance do the smoothing)",
    )  # fmt: skip
    autoscaler_backlog_wake: bool = Field(
        True, description="a group at zero with a backlog metric is evaluated at the first message "
        "its stream stores, not at the next tick (one ephemeral consumer on the stream per such group)",
    )  # fmt: skip
    autoscaler_token_file: Path | None = Field(
        None, description="the operator token the autoscaler scales with; default "
        "<data_dir>/autoscaler.token (made in the tokens file on first start)",
    )  # fmt: skip
    anonymous_read: bool = Field(False, description="allow reads without a token")
    registry_timeout_seconds: float = Field(5.0, gt=0, description="how long a registry call may take")
