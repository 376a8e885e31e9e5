"""The CLI's settings (``BAY_*``): where the gateway is and which token to send."""

from __future__ import annotations

from pydantic import Field, SecretStr

from libs import defaults
from libs.settings import CommonSettings
from services.cli.errors import CliError, ExitCode


class CliSettings(CommonSettings):
    gateway_url: str = Field(defaults.GATEWAY_URL, description="the gateway the CLI talks to")
    token: SecretStr | None = Field(None, description="bearer token; default <data_dir>/admin.token")
    cli_timeout_seconds: float = Field(15.0, gt=0, description="how long one CLI request may take")

    def bearer_token(self) -> str:
        """BAY_TOKEN, else the admin token ``bay up`` wrote into the data directory."""
        if self.token is not None and self.token.get_secret_value().strip():
            return self.token.get_secret_value().strip()
        path = self.data_dir / "admin.token"
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise CliError(
                f"no token: BAY_TOKEN is not set and {path} cannot be read ({exc.strerror})",
                ExitCode.AUTH,
                "run `bay up` in this directory (it writes the admin token), set BAY_DATA_DIR to its "
                "data directory, or set BAY_TOKEN",
            ) from exc
        if not token:
            raise CliError(
                f"{path} is empty", ExitCode.AUTH, "remove it and run `bay up` again, or set BAY_TOKEN"
            )
        return token
