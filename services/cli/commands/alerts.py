"""``bay alerts``: what is firing now (asks the gateway, which asks the platform's Alertmanager)."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli import render
from services.cli.app import Output, client_of, print_doc, stderr, stdout_console

NOT_CONFIGURED = (
    "the gateway has no Alertmanager (its BAY_ALERTMANAGER_URL is empty): nothing can say what fires; "
    "`bay up --monitoring` runs one"
)


def alerts(
    ctx: typer.Context,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """Alerts firing now (not silenced, not inhibited), the most severe first: alert, group, severity,
    since when, summary. Exits 5 when the gateway's Alertmanager does not answer."""
    with client_of(ctx) as gw:
        body = gw.alerts()
    if output != Output.table:
        print_doc(body, output.value)
        return
    if not body.get("configured"):
        stderr.print(NOT_CONFIGURED, markup=False)
        return
    firing = body.get("alerts") or []
    if not firing:
        stderr.print("no alert is firing")
        return
    stdout_console().print(render.alerts_table(firing))
