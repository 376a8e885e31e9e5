"""Group commands: apply, get, scale (and wait), history, rollback, delete."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from services.cli import render
from services.cli.app import DocOutput, Output, client_of, print_doc, stderr, stdout_console
from services.cli.client import GatewayClient
from services.cli.deployments import deployments_table
from services.cli.errors import CliError, ExitCode
from services.cli.specfile import read_specs
from services.cli.wait import STATUS_CALL_SECONDS, Target, transient, wait_settled


def _current(gw: GatewayClient, name: str) -> dict[str, Any] | None:
    try:
        return gw.get_group(name)
    except CliError as exc:
        if exc.code == ExitCode.NOT_FOUND:
            return None
        raise


def apply(
    ctx: typer.Context,
    filename: Annotated[
        str, typer.Option("-f", "--filename", help="YAML or JSON group spec(s); - for stdin.")
    ],
) -> None:
    """Create each group of the file, or update it to the file's spec.

    A spec without `instances` keeps the group's current count: scaling is not configuration.
    """
    specs = read_specs(filename, sys.stdin.read() if filename == "-" else None)
    with client_of(ctx) as gw:
        for spec in specs:
            name = spec["name"]
            current = _current(gw, name)
            if current is None:
                try:
                    reply = gw.create_group(spec)
                    typer.echo(f"group {name} created (version {reply['group']['version']})")
                    continue
                except CliError as exc:
                    if exc.code != ExitCode.CONFLICT:
                        raise
                    current = gw.get_group(name)  # created meanwhile: update it instead
            if "instances" not in spec:
                spec = {**spec, "instances": (current.get("spec") or {}).get("instances", 0)}
            reply = gw.update_group(name, spec)
            before, after = current.get("version"), reply["group"]["version"]
            if before != after:
                typer.echo(f"group {name} updated (version {before} -> {after})")
            else:
                typer.echo(f"group {name} unchanged (version {after})")


def get_groups(
    ctx: typer.Context,
    cluster: Annotated[str, typer.Option(help="Only groups of this cluster.")] = "",
    service: Annotated[str, typer.Option(help="Only groups registering this service name.")] = "",
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """List groups."""
    with client_of(ctx) as gw:
        groups = gw.list_groups(cluster, service)
    if output == Output.table:
        stdout_console().print(render.groups_table(groups))
    else:
        print_doc({"groups": groups}, output.value)


def get_group(
    ctx: typer.Context,
    name: str,
    output: Annotated[DocOutput, typer.Option("-o", "--output")] = DocOutput.yaml,
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="SEQ|TIME",
            help="Time travel: the group as it was after event SEQ of the log, or at TIME "
            "(RFC 3339, e.g. 2024-05-01T12:00:00Z), with its tasks then.",
        ),
    ] = "",
) -> None:
    """Show one group: its spec and versions (with --at: as it was then, from the log)."""
    with client_of(ctx) as gw:
        if not at:
            print_doc(gw.get_group(name), output.value)
            return
        group = gw.get_group(name, at=at)
        tasks = gw.group_tasks(name, include_ended=True, at=str(group["at_sequence"]))
    print_doc({**group, "tasks": tasks["tasks"]}, output.value)


def scale(
    ctx: typer.Context,
    name: str,
    instances: Annotated[int, typer.Argument(min=0, help="The new number of instances.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the event.")] = "",
    wait: Annotated[
        bool, typer.Option("--wait", help="Then wait until every task is ready (a progress bar shows it).")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="With --wait: give up after this many seconds (exit code 6).")
    ] = 120.0,
) -> None:
    """Set a group's number of instances; with --wait, until they are all ready."""
    with client_of(ctx) as gw:
        reply = gw.scale(name, instances, reason)
        typer.echo(f"group {name} scaled to {reply['group']['spec'].get('instances', 0)}")
        if wait:
            target = Target(int(reply["group"]["spec"].get("instances", 0)), int(reply.get("sequence", 0)))
            wait_ready(gw, name, target, timeout)


def wait_ready(gw: GatewayClient, name: str, target: Target, timeout: float) -> None:
    """A progress bar of ready/desired until the group settles; exit code 6 with the reason if it
    does not within ``timeout``."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} ready"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=stderr,
    )
    bar = progress.add_task(name, total=max(target.instances, 1), completed=0, detail="")

    def show(status: dict[str, Any]) -> None:
        detail = ", ".join(
            f"{status.get(k, 0)} {k}" for k in ("staged", "killing", "unhealthy") if status.get(k)
        )
        progress.update(
            bar,
            total=max(int(status.get("desired", 0)), 1),
            completed=int(status.get("ready", 0)),
            detail=detail,
        )

    unavailable: list[CliError] = []

    def hold_on(exc: CliError) -> None:  # a slow or restarting scheduler: the wait goes on
        unavailable[:] = [exc]
        progress.update(bar, detail="status unavailable; retrying")

    with progress:
        ok, last = wait_settled(gw, name, target, timeout, show, on_unavailable=hold_on)
    if ok and last is not None:
        typer.echo(f"group {name}: {render.status_line(last)}")
        return
    try:  # the freshest reason, however long ago the last change was
        status: dict[str, Any] | None = gw.group_status(name, timeout=STATUS_CALL_SECONDS)
        unavailable.clear()
    except CliError as exc:
        if not transient(exc):
            raise
        status, unavailable[:] = last, [exc]
    now = f"; its status is unavailable now: {unavailable[0].message}" if unavailable else ""
    if status is None:
        raise CliError(
            f"group {name} not ready in time: no status in {timeout:g}s{now}",
            ExitCode.NOT_READY,
            unavailable[0].hint if unavailable else "",
        )
    why = render.pending_line(status) or f"not settled: {render.status_line(status)}"
    stderr.print(escape(why))
    seen = "" if not unavailable else " (the last status seen)"
    raise CliError(
        f"group {name} not ready in time: {status.get('ready', 0)}/{status.get('desired', 0)} ready "
        f"after {timeout:g}s{seen}{now}",
        ExitCode.NOT_READY,
        f"the scale itself is done; see `bay tasks {name}` for what the tasks are doing",
    )


def history(
    ctx: typer.Context,
    name: str,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """A group's events, oldest first, and its deployments (from the deployer)."""
    with client_of(ctx) as gw:
        events = gw.history(name)
        try:
            deployments: list[dict[str, Any]] | None = gw.deployments(name)
        except CliError as exc:  # the group's own history stands without them
            if exc.code != ExitCode.UNAVAILABLE:
                raise
            deployments = None
            stderr.print(f"[yellow]deployments not shown: {escape(exc.message)}[/]")
    if output != Output.table:
        print_doc({"events": events, "deployments": deployments or []}, output.value)
        return
    console = stdout_console()
    console.print(render.history_table(events))
    if deployments:
        console.print()
        console.print(deployments_table(deployments))


def rollback(
    ctx: typer.Context,
    name: str,
    version: Annotated[int, typer.Argument(min=1, help="The spec version to restore.")],
) -> None:
    """Restore the spec a group had at VERSION (as a new version; the instance count is kept)."""
    with client_of(ctx) as gw:
        reply = gw.rollback(name, version)
    now = reply["group"]["version"]
    typer.echo(f"group {name} rolled back to the spec of version {version} (now version {now})")


def delete(ctx: typer.Context, name: str) -> None:
    """Delete a group (its history stays; the name may be created again)."""
    with client_of(ctx) as gw:
        gw.delete(name)
    typer.echo(f"group {name} deleted")
