"""``bay token``: local admin operations on the data directory's tokens file (no gateway)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from libs.auth import TokenStore
from services.cli.app import settings_of, stderr
from services.cli.errors import CliError


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"


def create(
    ctx: typer.Context,
    name: str,
    role: Annotated[Role, typer.Option("--role", help="viewer < operator < admin.")],
) -> None:
    """Make a token; it is printed once (only its hash is stored)."""
    if not name.strip():
        raise CliError("the token's NAME must not be empty")
    path = settings_of(ctx).resolved_tokens_file()
    token = TokenStore(path).create(name.strip(), role.value)
    typer.echo(token)
    stderr.print(f"token {escape(name)} ({role.value}) added to {path}; this is the only time it is shown")


def list_(ctx: typer.Context) -> None:
    """Names and roles of the tokens (never the tokens)."""
    for p in TokenStore(settings_of(ctx).resolved_tokens_file()).names():
        typer.echo(f"{p.name}\t{p.role}")
