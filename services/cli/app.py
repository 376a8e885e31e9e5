"""The pieces every command shares: the app class that maps failures onto exit codes, the consoles,
and the settings/client a command gets from its context."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from services.cli import render
from services.cli.client import GatewayClient
from services.cli.errors import CliError, ExitCode
from services.cli.settings import CliSettings

stderr = Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    # piped output keeps long rows on one line (tables are read by scripts and tests too)
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def print_error(exc: CliError) -> None:
    stderr.print(f"[bold red]error:[/] [red]{escape(exc.message)}[/]")
    for v in exc.violations:
        stderr.print(f"  [red]{escape(v.field)}[/]: {escape(v.description)}")
    if exc.hint:
        stderr.print(f"[yellow]hint:[/] {escape(exc.hint)}")


class BayApp(typer.Typer):
    """Runs click in non-standalone mode so that every failure maps onto Bay's exit codes
    (click's own usage errors exit 2, which ``bay`` reserves for "not found")."""

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        kwargs.setdefault("standalone_mode", False)
        try:
            result = super().__call__(*args, **kwargs)
        except CliError as exc:
            print_error(exc)
            return int(exc.code)
        except typer.TyperException as exc:  # click's usage errors and the like
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            else:
                stderr.print(f"[red]error:[/] {escape(exc.message)}")
            return int(ExitCode.USAGE) if exc.exit_code == 2 else int(exc.exit_code)
        except typer.Abort:
            return 130
        return result if isinstance(result, int) else 0


class Output(StrEnum):
    table = "table"
    yaml = "yaml"
    json = "json"


class DocOutput(StrEnum):
    yaml = "yaml"
    json = "json"


def settings_of(ctx: typer.Context) -> CliSettings:
    """The settings, read once per invocation (the root callback may have set them)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliSettings):
        root.obj = CliSettings()
    return root.obj


def client_of(ctx: typer.Context) -> GatewayClient:
    s = settings_of(ctx)
    return GatewayClient(s.gateway_url, s.bearer_token(), timeout=s.cli_timeout_seconds)


def print_doc(doc: Any, fmt: str) -> None:
    typer.echo(render.as_json(doc) if fmt == "json" else render.as_yaml(doc).rstrip("\n"))
