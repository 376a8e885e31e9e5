"""The ``bay`` command line: ``bay up`` runs the platform; the other commands talk REST to its gateway.

Commands stay thin: they read input, call :class:`~services.cli.client.GatewayClient`, and print
with :mod:`services.cli.render`. Every failure is a :class:`~services.cli.errors.CliError` whose exit
code the app returns (see ``EPILOG``). This module only wires them into one app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli.app import BayApp
from services.cli.commands import alerts, builds, dns, events, groups, nats, tasks, tokens
from services.cli.commands.autoscale import autoscale_app
from services.cli.commands.clusters import cluster_app
from services.cli.commands.deploy import deploy, rollout_app
from services.cli.errors import EPILOG, CliError
from services.cli.settings import CliSettings

app = BayApp(
    name="bay",
    help="Bay: run and change the platform's groups.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    gateway_url: Annotated[
        str | None, typer.Option("--gateway-url", help="The gateway (default: BAY_GATEWAY_URL or :8080).")
    ] = None,
) -> None:
    """Bay: run and change the platform's groups."""
    if gateway_url:
        ctx.obj = CliSettings(gateway_url=gateway_url)


@app.command()
def up(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where data lives (BAY_DATA_DIR).")
    ] = None,
    sim_cluster: Annotated[
        str | None,
        typer.Option(
            "--sim-cluster",
            metavar="NAME",
            help="Demo/test: also run a simulated Mesos cluster NAME (a master simulator and its "
            "scheduler; needs a source checkout: the simulator lives in tests/).",
        ),
    ] = None,
    sim_agents: Annotated[
        int | None, typer.Option("--sim-agents", min=1, help="The simulated cluster's agents (3).")
    ] = None,
    sim_run_commands: Annotated[
        bool,
        typer.Option(
            "--sim-run-commands",
            help="The simulated cluster's agents run tasks' commands as real processes on this machine "
            "(BAY_SIM_RUN_COMMANDS).",
        ),
    ] = False,
    monitoring: Annotated[
        bool,
        typer.Option(
            "--monitoring",
            help="Also run Prometheus (scraping every Bay process and task, evaluating the shipped alert "
            "rules) and Alertmanager, on 127.0.0.1:9090 and :9093 (BAY_MONITORING; see the README).",
        ),
    ] = False,
    keep_tasks: Annotated[
        bool,
        typer.Option(
            "--keep-tasks",
            help="On stop, leave the local cluster's tasks running; the next `bay up` adopts them "
            "(BAY_KEEP_TASKS).",
        ),
    ] = False,
) -> None:
    """Run the whole platform in the foreground (nats-server, registry, the scheduler of the cluster
    `local`, DNS, gateway, audit); Ctrl-C or SIGTERM stops it and every task of the cluster `local`
    (within the kill grace), unless --keep-tasks is given."""
    from pydantic import ValidationError

    from services.cli.stack import StackSettings, run_stack  # grpc and friends: only for `up`
    from services.cli.stack.table import SIM_MODULE, SOURCE_ROOT

    given: dict[str, Any] = {"data_dir": data_dir, "sim_cluster": sim_cluster, "sim_agents": sim_agents}
    if keep_tasks:
        given["keep_tasks"] = True
    if monitoring:
        given["monitoring"] = True
    if sim_run_commands:
        given["sim_run_commands"] = True
    try:
        settings = StackSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise CliError(f"bad setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    sim_main = SOURCE_ROOT.joinpath(*SIM_MODULE.split("."), "__main__.py")
    if settings.sim_cluster and not sim_main.exists():
        raise CliError(
            f"--sim-cluster needs the Mesos master simulator, {sim_main}, which is not there",
            hint="run `bay` from a source checkout of Bay (the simulator is part of its tests)",
        )
    raise typer.Exit(run_stack(settings))


app.command()(groups.apply)
get_app = typer.Typer(help="Show groups.", no_args_is_help=True)
get_app.command("groups")(groups.get_groups)
get_app.command("group")(groups.get_group)
app.add_typer(get_app, name="get")
app.command()(groups.scale)
app.command()(tasks.tasks)
app.command()(tasks.task)
app.command()(tasks.logs)
app.command()(tasks.kill)
app.command()(groups.history)
app.command()(groups.rollback)
app.command()(groups.delete)
app.command()(events.events)
app.command()(dns.dns)
app.command()(alerts.alerts)
app.command()(deploy)
app.add_typer(rollout_app, name="rollout")
app.add_typer(autoscale_app, name="autoscale")
token_app = typer.Typer(
    help="Manage API tokens (local: writes the data directory's tokens file).", no_args_is_help=True
)
token_app.command("create")(tokens.create)
token_app.command("list")(tokens.list_)
token_app.command("ensure-file")(tokens.ensure_file)
app.add_typer(token_app, name="token")
app.add_typer(cluster_app, name="cluster")
app.add_typer(builds.build_app, name="build")
app.command("builds")(builds.builds)
nats_app = typer.Typer(
    help="The platform's NATS users (local: the data directory's nats-auth/).", no_args_is_help=True
)
nats_app.command("init")(nats.init)
nats_app.command("setup")(nats.setup)
nats_app.command("audit-credential")(nats.audit_credential)
nats_app.command("metrics-credential")(nats.metrics_credential)
app.add_typer(nats_app, name="nats")
