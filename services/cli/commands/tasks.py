"""Task commands: tasks, task, logs, kill (each asks the gateway, which asks the task's scheduler)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import httpx
import typer
from rich.markup import escape

from libs.defaults import MAX_LOG_TAIL
from libs.events.model import TERMINAL
from services.cli import render
from services.cli.app import DocOutput, Output, client_of, print_doc, stdout_console
from services.cli.errors import CliError, ExitCode


def tasks(
    ctx: typer.Context,
    group: str,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Also the last tasks that ended.")] = False,
    state: Annotated[str, typer.Option(help="Only tasks in this state, e.g. RUNNING.")] = "",
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """A group's tasks: state, readiness, host, ports, age; then why tasks wait, if some do."""
    with client_of(ctx) as gw:
        body = gw.group_tasks(group, state.upper(), all_)
    if output != Output.table:
        print_doc(body, output.value)
        return
    console = stdout_console()
    console.print(render.tasks_table(body.get("tasks") or [], time.time()))
    status = body.get("status") or {}
    console.print(f"{escape(group)} on {escape(str(body.get('cluster', '')))}: {render.status_line(status)}")
    if line := render.pending_line(status):
        console.print(escape(line))


def task(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task's id (<group>.<uuid>).")],
    output: Annotated[DocOutput, typer.Option("-o", "--output")] = DocOutput.yaml,
) -> None:
    """Show one task: where it runs, its ports, state, health, resources."""
    with client_of(ctx) as gw:
        print_doc(gw.get_task(task_id), output.value)


def logs(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task's id (<group>.<uuid>).")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new output.")] = False,
    stderr_: Annotated[bool, typer.Option("--stderr", help="The task's stderr instead of stdout.")] = False,
    tail: Annotated[
        int, typer.Option(min=1, max=MAX_LOG_TAIL, help="Start with this many last lines.")
    ] = 100,
) -> None:
    """A task's output: the last lines, then (--follow) new output until the task ends or Ctrl-C."""
    stream = "stderr" if stderr_ else "stdout"
    out = sys.stdout.buffer
    with client_of(ctx) as gw:
        resp = gw.task_logs(task_id, stream=stream, tail=tail, follow=follow)
        try:
            for chunk in resp.iter_bytes():
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            return
        except httpx.HTTPError as exc:
            raise CliError(
                f"the log of {task_id} broke off ({type(exc).__name__})",
                ExitCode.UNAVAILABLE,
                "the task's scheduler or the gateway went away; run the command again",
            ) from exc
        finally:
            resp.close()


def kill(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task's id (<group>.<uuid>).")],
) -> None:
    """Kill one task; its group keeps its count, so a replacement starts (a restart of one copy)."""
    with client_of(ctx) as gw:
        killed = gw.kill_task(task_id)
    state = str(killed.get("state", ""))
    if state in TERMINAL:
        typer.echo(f"task {task_id} has already ended ({state})")
        return
    typer.echo(
        f"task {task_id} killed; group {killed.get('group', '')} keeps its count: a replacement starts"
    )
