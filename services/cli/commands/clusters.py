"""Cluster commands: ``bay cluster list`` and
``bay cluster register NAME --backend B [--address A] [--scheduler HOST:PORT]``.

A cluster names its backend (``local`` or ``mesos``) and, for Mesos, its master; its scheduler
(``python -m services.scheduler`` with ``BAY_CLUSTER=NAME``) reads both from the registration.
``--scheduler`` says where that scheduler is reached, for clients that talk to it directly; register
again with only another ``--scheduler`` when it moves.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from services.cli.app import Output, client_of, print_doc, stdout_console
from services.cli.errors import CliError, ExitCode

cluster_app = typer.Typer(
    help="The clusters groups run on (each has its own scheduler).", no_args_is_help=True
)


@cluster_app.command("list")
def list_(
    ctx: typer.Context, output: Annotated[Output, typer.Option("-o", "--output")] = Output.table
) -> None:
    """Registered clusters: name, backend, address, scheduler, labels."""
    with client_of(ctx) as gw:
        clusters = gw.request("GET", "/v1/clusters").get("clusters", [])
    if output != Output.table:
        print_doc({"clusters": clusters}, output.value)
        return
    table = Table("NAME", "BACKEND", "ADDRESS", "SCHEDULER", "LABELS", box=None)
    for c in clusters:
        labels = ",".join(f"{k}={v}" for k, v in sorted((c.get("labels") or {}).items()))
        table.add_row(
            c["name"], c["backend"], c.get("address") or "-", c.get("scheduler_address") or "-", labels or "-"
        )
    stdout_console().print(table)


@cluster_app.command("register")
def register(
    ctx: typer.Context,
    name: str,
    backend: Annotated[str, typer.Option(help="local or mesos.")] = "local",
    address: Annotated[str, typer.Option(help="mesos: the master, host:port.")] = "",
    scheduler: Annotated[
        str, typer.Option(help="Where the cluster's scheduler is reached (gRPC), HOST:PORT.")
    ] = "",
    label: Annotated[list[str] | None, typer.Option(help="A cluster label KEY=VALUE (repeatable).")] = None,
) -> None:
    """Register a cluster (then start its scheduler with BAY_CLUSTER=NAME)."""
    labels: dict[str, str] = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--label {item!r} is not KEY=VALUE", code=ExitCode.USAGE)
        labels[key] = value
    body = {"name": name, "backend": backend, "address": address, "labels": labels}
    if scheduler:
        body["scheduler_address"] = scheduler
    with client_of(ctx) as gw:
        cluster = gw.request("POST", "/v1/clusters", json=body, mutation=True)
    where = [cluster["backend"], cluster.get("address"), cluster.get("scheduler_address")]
    where[2] = where[2] and f"scheduler {where[2]}"
    stdout_console().print(f"cluster {cluster['name']} registered ({', '.join(w for w in where if w)})")
