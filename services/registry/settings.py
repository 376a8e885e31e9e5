"""Registry settings (``BAY_*`` environment variables)."""

from pydantic import Field

from libs import defaults
from libs.settings import CommonSettings


class RegistrySettings(CommonSettings):
    metrics_listen: str = Field(
        defaults.REGISTRY_METRICS_ADDRESS, description='its Prometheus /metrics host:port ("": none)'
    )
    registry_listen: str = Field(defaults.REGISTRY_ADDRESS, description="where the registry's gRPC listens")
    snapshot_every: int = Field(50_000, gt=0, description="events between two registry snapshots")
    anonymous_read: bool = Field(False, description="allow reads without a token")
