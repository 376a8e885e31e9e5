"""Task commands: tasks, task, logs (of a task or a whole group), kill (each asks the gateway,
which asks the task's scheduler)."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from typing import Annotated

import httpx
import typer
from rich.markup import escape

from libs.defaults import MAX_LOG_TAIL
from libs.events.model import TERMINAL
from services.cli import render
from services.cli.app import DocOutput, Output, client_of, print_doc, stdout_console
from services.cli.errors import CliError, ExitCode
from services.cli.logcolour import PrefixColours, wants_colour

TASK_TAIL = 100  # lines of one task's log to start with
GROUP_TAIL = 10  # of each task's, in a group's log


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


class Stream(StrEnum):
    stdout = "stdout"
    stderr = "stderr"


def logs(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="TASK|GROUP",
            help="A task's id (<group>.<uuid>: it has a dot) or a group's name (it has none).",
        ),
    ],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new output.")] = False,
    stream: Annotated[Stream, typer.Option("--stream", help="Which of the task's outputs.")] = Stream.stdout,
    stderr_: Annotated[bool, typer.Option("--stderr", help="Short for --stream stderr.")] = False,
    tail: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_LOG_TAIL, help="Start with this many last lines (of each task); 100 / 10."
        ),
    ] = None,
) -> None:
    """A task's output, or every task's of a group (each line as `<task-id> | <line>`, coloured per
    task on a terminal): the last lines, then (--follow) new output until the task ends (a group:
    until it is deleted; tasks that start join) or Ctrl-C."""
    chosen = "stderr" if stderr_ else stream.value
    group = "." not in target  # a task id is <group>.<uuid>; a group's name is a DNS label
    out = sys.stdout.buffer
    colours = PrefixColours(out) if group and wants_colour(out) else None
    with client_of(ctx) as gw:
        if group:
            resp = gw.group_logs(target, stream=chosen, tail=tail or GROUP_TAIL, follow=follow)
        else:
            resp = gw.task_logs(target, stream=chosen, tail=tail or TASK_TAIL, follow=follow)
        try:
            for chunk in resp.iter_bytes():
                if colours is not None:
                    colours.write(chunk)
                else:
                    out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            return
        except httpx.HTTPError as exc:
            what = f"group {target}" if group else target
            raise CliError(
                f"the log of {what} broke off ({type(exc).__name__})",
                ExitCode.UNAVAILABLE,
                "the scheduler or the gateway went away; run the command again",
            ) from exc
        finally:
            if colours is not None:
                colours.close()
                out.flush()
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
