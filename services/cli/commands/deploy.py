"""Deployment commands: ``bay deploy`` (and wait), ``bay rollout status|pause|resume|promote|abort|undo``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape

from services.cli.app import Output, client_of, print_doc, stderr, stdout_console
from services.cli.client import GatewayClient
from services.cli.deployments import STEP_HELP, counts_line, deploy_body, headline, status_view
from services.cli.errors import CliError, ExitCode
from services.cli.rollout import follow
from services.cli.specfile import read_specs

JSON = dict[str, Any]


class StrategyKind(StrEnum):
    rolling = "rolling"
    recreate = "recreate"
    canary = "canary"
    blue_green = "blue-green"


def deploy(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The group to deploy.")],
    build: Annotated[str, typer.Option("--build", help="A registered build's id (`bay builds`).")] = "",
    filename: Annotated[
        str, typer.Option("-f", "--filename", help="Or a whole new spec (YAML or JSON; - for stdin).")
    ] = "",
    strategy: Annotated[
        StrategyKind | None,
        typer.Option(help="How (default: the group's upgrade_strategy, rolling; canary with --step)."),
    ] = None,
    cluster: Annotated[str, typer.Option(help="Move the group to this cluster (a migration).")] = "",
    step: Annotated[
        list[str] | None, typer.Option("--step", help=f"A canary step, in order: {STEP_HELP}.")
    ] = None,
    min_ready: Annotated[
        float | None,
        typer.Option("--min-ready", min=0, help="A new task counts once ready this many seconds."),
    ] = None,
    deadline: Annotated[
        float | None,
        typer.Option(
            "--deadline", min=0.1, help="Failed after this many seconds without progress (pauses excluded)."
        ),
    ] = None,
    min_health: Annotated[
        float | None, typer.Option("--min-health", min=0, max=1, help="Rolling: minimum_health_capacity.")
    ] = None,
    max_over: Annotated[
        float | None, typer.Option("--max-over", min=0, max=1, help="Rolling: maximum_over_capacity.")
    ] = None,
    scale_down_delay: Annotated[
        float | None,
        typer.Option(
            "--scale-down-delay", min=0, help="Blue-green: seconds the old version stays after the switch."
        ),
    ] = None,
    auto_promote: Annotated[
        bool, typer.Option("--auto-promote", help="Blue-green: switch once the new version is ready.")
    ] = False,
    no_auto_rollback: Annotated[
        bool, typer.Option("--no-auto-rollback", help="A failed deployment stays where it failed.")
    ] = False,
    supersede: Annotated[
        bool, typer.Option("--supersede", help="Replace the group's running deployment on purpose.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; kept in the deployment's events.")] = "",
    wait: Annotated[
        bool, typer.Option("--wait", help="Then follow it until it ends (exit 7 unless it succeeded).")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="With --wait: give up after this many seconds (exit 6).")
    ] = 600.0,
) -> None:
    """Deploy a build (or a new spec, or to another cluster) to a group, by a strategy."""
    spec = None
    if filename:
        specs = read_specs(filename, sys.stdin.read() if filename == "-" else None)
        if len(specs) != 1:
            raise CliError(f"{filename}: give exactly one spec to deploy, not {len(specs)}")
        spec = specs[0]
    if not (build or spec or cluster):
        raise CliError("give --build ID, -f SPEC or --cluster C", hint="`bay builds` lists the builds")
    body = deploy_body(
        build=build,
        spec=spec,
        cluster=cluster,
        strategy=strategy.value if strategy else "",
        steps=step,
        min_ready=min_ready,
        deadline=deadline,
        min_health=min_health,
        max_over=max_over,
        scale_down_delay=scale_down_delay,
        no_auto_rollback=no_auto_rollback,
        auto_promote=auto_promote,
        supersede=supersede,
        reason=reason,
    )
    with client_of(ctx) as gw:
        d = gw.deploy(group, body)["deployment"]
        typer.echo(f"deployment started: {headline(d)}")
        if wait:
            wait_deployment(gw, group, d, timeout)


def wait_deployment(gw: GatewayClient, group: str, d: JSON, timeout: float | None) -> JSON:
    """Follow ``d`` until it ends; exit 7 unless it succeeded, 6 if ``timeout`` passes first."""

    def hold_on(exc: CliError) -> None:  # a gateway or deployer restarting: the follow goes on
        stderr.print(f"[yellow]{escape(exc.message)}; retrying[/]")

    with showing(d) as show:
        ident = str(d.get("id", ""))
        last = follow(gw, group, show, deployment_id=ident, timeout=timeout, on_unavailable=hold_on)
    if last is None:
        raise CliError(
            f"deployment {d.get('id')} not done after {timeout:g}s",
            ExitCode.NOT_READY,
            f"it goes on: `bay rollout status {group} -w` follows it, `bay rollout abort {group}` stops it",
        )
    typer.echo(headline(last))
    if last.get("state") != "succeeded":
        raise CliError(
            f"deployment {last.get('id')} {last.get('state')}"
            + (f": {last['reason']}" if last.get("reason") else ""),
            ExitCode.DEPLOYMENT_FAILED,
            f"`bay history {group}` shows what happened",
        )
    return last


@contextmanager
def showing(first: JSON) -> Iterator[Callable[[JSON], None]]:
    """A live view (steps and a bar) on a terminal; elsewhere (CI logs) a line per change."""
    if stderr.is_terminal:
        with Live(status_view(first), console=stderr, refresh_per_second=8) as live:
            yield lambda d: live.update(status_view(d))
        return
    said: list[str] = []

    def line(d: JSON) -> None:
        text = f"{headline(d)}; {counts_line(d)}"
        if not said or said[-1] != text:
            said.append(text)
            stderr.print(escape(text), soft_wrap=True)

    yield line


# ---- bay rollout ... ----

rollout_app = typer.Typer(help="A group's deployment: its progress, and its controls.", no_args_is_help=True)


@rollout_app.command("status")
def status(
    ctx: typer.Context,
    group: str,
    watch: Annotated[bool, typer.Option("-w", "--watch", help="Follow it live until it ends.")] = False,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """The group's deployment (running, else the last): its steps and new ready / instances."""
    with client_of(ctx) as gw:
        d = gw.group_deployment(group)
        if watch and output == Output.table and not d.get("ended"):
            wait_deployment(gw, group, d, None)
            return
    if output == Output.table:
        stdout_console().print(status_view(d))
    else:
        print_doc(d, output.value)


def _control(
    ctx: typer.Context, group: str, action: str, *, reason: str = "", all_steps: bool = False
) -> None:
    with client_of(ctx) as gw:
        d = gw.control_deployment(group, action, reason=reason, all_steps=all_steps)["deployment"]
    typer.echo(headline(d))


Reason = Annotated[str, typer.Option(help="Why; kept in the deployment's events.")]


@rollout_app.command("pause")
def pause(ctx: typer.Context, group: str, reason: Reason = "") -> None:
    """Hold the deployment where it is (its progress deadline stops counting)."""
    _control(ctx, group, "pause", reason=reason)


@rollout_app.command("resume")
def resume(ctx: typer.Context, group: str, reason: Reason = "") -> None:
    """Go on from where it was paused."""
    _control(ctx, group, "resume", reason=reason)


@rollout_app.command("promote")
def promote(
    ctx: typer.Context,
    group: str,
    all_: Annotated[bool, typer.Option("--all", help="Past every remaining step.")] = False,
    reason: Reason = "",
) -> None:
    """On to the next step (past a pause until promoted), or with --all to the end."""
    _control(ctx, group, "promote", reason=reason, all_steps=all_)


@rollout_app.command("abort")
def abort(ctx: typer.Context, group: str, reason: Reason = "") -> None:
    """Back to exactly the last stable version and build, nothing of the new one left."""
    _control(ctx, group, "abort", reason=reason)


@rollout_app.command("undo")
def undo(ctx: typer.Context, group: str, reason: Reason = "") -> None:
    """A new deployment back to the version before the group's last successful deployment."""
    _control(ctx, group, "undo", reason=reason)
