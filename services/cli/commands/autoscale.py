"""``bay autoscale set|get|off|status|list``: a group's autoscaling policy and what it does."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from services.cli.app import DocOutput, Output, client_of, print_doc, stdout_console
from services.cli.autoscale import (
    BACKLOG_HELP,
    METRIC_HELP,
    PROMETHEUS_HELP,
    parse_backlog,
    parse_metric,
    parse_prometheus,
    policies_table,
    policy_body,
    policy_line,
    read_policy,
    status_view,
)

autoscale_app = typer.Typer(
    help="Autoscaling: a group's instance count kept between bounds by metric targets.", no_args_is_help=True
)


@autoscale_app.command("set")
def set_(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The group to autoscale.")],
    min_: Annotated[int | None, typer.Option("--min", min=0, help="Never fewer instances.")] = None,
    max_: Annotated[int | None, typer.Option("--max", min=1, help="Never more instances.")] = None,
    cpu: Annotated[
        float | None, typer.Option("--cpu", min=0, max=1, help="Target CPU per task (a fraction, 0.6).")
    ] = None,
    memory: Annotated[
        float | None, typer.Option("--memory", min=0, max=1, help="Target memory per task (a fraction).")
    ] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help=METRIC_HELP)] = None,
    prometheus: Annotated[list[str] | None, typer.Option("--prometheus", help=PROMETHEUS_HELP)] = None,
    backlog: Annotated[list[str] | None, typer.Option("--backlog", help=BACKLOG_HELP)] = None,
    up_window: Annotated[
        float | None, typer.Option("--up-window", min=0, help="Seconds a rise must hold (6).")
    ] = None,
    up_cooldown: Annotated[
        float | None, typer.Option("--up-cooldown", min=0, help="Seconds between steps up (0).")
    ] = None,
    panic_threshold: Annotated[
        float | None,
        typer.Option(
            "--panic-threshold", min=1, help="Jump straight to the need when it reaches this x ready (2)."
        ),
    ] = None,
    up_stable_window: Annotated[
        float | None,
        typer.Option("--up-stable-window", min=0, help="Seconds after a panic before any scale-down (60)."),
    ] = None,
    down_window: Annotated[
        float | None,
        typer.Option(
            "--down-window", min=0, help="Seconds whose highest recommendation wins going down (300)."
        ),
    ] = None,
    down_max_percent: Annotated[
        float | None,
        typer.Option(
            "--down-max-percent", min=0, max=100, help="At most this share of the tasks per step (25)."
        ),
    ] = None,
    down_min_step: Annotated[
        int | None,
        typer.Option("--down-min-step", min=1, help="A step down may always remove this many (1)."),
    ] = None,
    down_cooldown: Annotated[
        float | None, typer.Option("--down-cooldown", min=0, help="Seconds between steps down (15).")
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option("--tolerance", min=0, max=1, help="No change within |value/target - 1| <= this (0.1)."),
    ] = None,
    filename: Annotated[
        str,
        typer.Option("-f", "--filename", help="A policy file (YAML or JSON; - for stdin); flags go over it."),
    ] = "",
    reason: Annotated[str, typer.Option(help="Why; kept in the autoscaler's event.")] = "",
) -> None:
    """Set (create or replace) the group's policy: from then on the autoscaler owns its count."""
    metrics: list[dict[str, Any]] = []
    if cpu is not None:
        metrics.append({"kind": "cpu", "target": cpu})
    if memory is not None:
        metrics.append({"kind": "memory", "target": memory})
    metrics += [parse_metric(m) for m in metric or []]
    metrics += [parse_prometheus(p) for p in prometheus or []]
    metrics += [parse_backlog(b) for b in backlog or []]
    base = read_policy(filename, sys.stdin.read() if filename == "-" else None) if filename else None
    body = policy_body(
        base,
        min_=min_,
        max_=max_,
        metrics=metrics,
        up={
            "window_seconds": up_window,
            "cooldown_seconds": up_cooldown,
            "panic_threshold": panic_threshold,
            "stable_window_seconds": up_stable_window,
        },
        down={
            "window_seconds": down_window,
            "max_percent": down_max_percent,
            "min_step": down_min_step,
            "cooldown_seconds": down_cooldown,
        },
        tolerance=tolerance,
        reason=reason,
    )
    with client_of(ctx) as gw:
        reply = gw.set_autoscale(group, body)
    typer.echo(
        ("unchanged (a retry): " if reply.get("duplicate") else "autoscaling ") + policy_line(reply["policy"])
    )


@autoscale_app.command("get")
def get(
    ctx: typer.Context,
    group: str,
    output: Annotated[DocOutput, typer.Option("-o", "--output")] = DocOutput.yaml,
) -> None:
    """The group's policy (null: the autoscaler's default), as `set -f` takes it back."""
    with client_of(ctx) as gw:
        print_doc(gw.get_autoscale(group), output.value)


@autoscale_app.command("off")
def off(ctx: typer.Context, group: str) -> None:
    """The group is no longer autoscaled; its instance count stays where it is."""
    with client_of(ctx) as gw:
        removed = gw.remove_autoscale(group).get("removed")
    typer.echo(f"{group}: autoscaling off; its count stays" if removed else f"{group} was not autoscaled")


@autoscale_app.command("status")
def status(
    ctx: typer.Context,
    group: str,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """Each metric's value against its target and what it asks for, the last decisions, and why
    nothing happens now."""
    with client_of(ctx) as gw:
        s = gw.autoscale_status(group)
    if output == Output.table:
        stdout_console().print(status_view(s))
    else:
        print_doc(s, output.value)


@autoscale_app.command("list")
def list_(
    ctx: typer.Context,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """Every autoscaled group: its bounds and targets."""
    with client_of(ctx) as gw:
        policies = gw.autoscale_policies()
    if output == Output.table:
        stdout_console().print(policies_table(policies))
    else:
        print_doc({"policies": policies}, output.value)
