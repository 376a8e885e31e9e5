"""``bay token``: local admin operations on the data directory's tokens file (no gateway)."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from libs.auth import TokenStore, ensure_token_file
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


def ensure_file(
    ctx: typer.Context,
    name: str,
    role: Annotated[Role, typer.Option("--role", help="viewer < operator < admin.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where <NAME>.token is kept.")],
    readable: Annotated[
        bool, typer.Option("--readable", help="Mode 0644 (for a program running as another user).")
    ] = False,
) -> None:
    """Keep a token in the file <DIR>/<NAME>.token, made on first use and kept after (for a program
    that reads its token from a file, such as Prometheus in docker-compose); prints the file's path."""
    if not name.strip():
        raise CliError("the token's NAME must not be empty")
    store = TokenStore(settings_of(ctx).resolved_tokens_file())
    ensure_token_file(directory, store, name.strip(), role.value)
    path = directory / f"{name.strip()}.token"
    os.chmod(path, 0o644 if readable else 0o600)
    typer.echo(str(path))
