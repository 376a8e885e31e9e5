"""``bay dns SERVICE``: what the DNS service answers for a service, and why a task is not in it
(asks the gateway, which asks the DNS service; the names themselves resolve on the DNS port)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from services.cli import render
from services.cli.app import Output, client_of, print_doc, stdout_console


def dns(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="The service: a group's `service`, or its name.")],
    cluster: Annotated[str, typer.Option(help="Only this cluster's names and tasks.")] = "",
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    json_: Annotated[bool, typer.Option("--json", help="The whole answer as JSON (as -o json).")] = False,
) -> None:
    """A service's DNS names, the records answered for them now, and each task: answered or not, and why.

    Exits 2 when no group registers the service (in that cluster).
    """
    with client_of(ctx) as gw:
        lookup = gw.dns_lookup(service, cluster)
    if json_ or output != Output.table:
        print_doc(lookup, "json" if json_ else output.value)
        return
    console = stdout_console()
    console.print(escape(render.dns_summary(lookup)))
    console.print("names:")
    for name in lookup.get("names") or []:
        console.print(f"  {escape(str(name))}")
    records = lookup.get("records") or []
    if records:
        console.print("records:")
        console.print(render.dns_records_table(records))
    else:
        console.print("records: none (no task is answered)")
    tasks = lookup.get("tasks") or []
    if tasks:
        console.print("tasks:")
        console.print(render.dns_tasks_table(tasks))
    else:
        console.print("tasks: none")
