"""Audit writer settings (``BAY_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field, model_validator

from libs.settings import CommonSettings


class AuditSettings(CommonSettings):
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the audit database; default sqlite:///<data_dir>/bay.db "
        "(postgresql://... uses psycopg 3)",
    )
    audit_durable: str = Field("bay-audit", description="JetStream durable consumer (and cursor) name")
    audit_batch_size: int = Field(500, ge=1, le=10_000, description="events per fetch and SQL transaction")
    audit_fetch_timeout_seconds: float = Field(5.0, gt=0, description="how long one fetch waits for events")
    audit_retry_seconds: float = Field(1.0, gt=0, description="wait before retrying a failed batch")

    @model_validator(mode="after")
    def _default_database(self) -> AuditSettings:
        # derived here, not in a Field default, because it depends on data_dir
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'bay.db').resolve()}"  # as the gateway's
        return self
