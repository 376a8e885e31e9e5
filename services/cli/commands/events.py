"""``bay events``: the past from the audit trail, then (``--follow``) the live stream."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from services.cli import render, sse
from services.cli.app import client_of, stderr
from services.cli.errors import CliError


def _matches(ev: dict[str, Any], kind: str, ident: str, type_: str) -> bool:
    """The filters again on the client: the stream may send more than was asked."""
    return (
        (not kind or ev.get("aggregate_type") == kind)
        and (not ident or ev.get("aggregate_id") == ident)
        and (not type_ or ev.get("type") == type_)
    )


def events(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    type_: Annotated[str, typer.Option("--type", help="Only events of this type, e.g. GroupScaled.")] = "",
    aggregate: Annotated[
        str, typer.Option(help="Only this aggregate: `group/web`, or a type: `group`.")
    ] = "",
    after: Annotated[int, typer.Option(min=0, help="Start after this stream sequence.")] = 0,
    output: Annotated[
        str, typer.Option("-o", "--output", help="text, or json (one object per line).")
    ] = "text",
) -> None:
    """Past events (oldest first); with --follow, then new ones as they happen (Ctrl-C stops).

    The past comes from the audit trail; following continues on the event stream right after
    the last event shown (and after a dropped connection, right after the last one received).
    """
    if output not in ("text", "json"):
        raise CliError(f"--output must be text or json, not {output!r}")
    kind, ident = render.parse_aggregate(aggregate)
    filters = {"aggregate_type": kind, "aggregate_id": ident, "type": type_}

    def show(ev: dict[str, Any]) -> None:
        typer.echo(json.dumps(ev, separators=(",", ":")) if output == "json" else render.event_line(ev))

    def dropped(reason: str, delay: float) -> None:
        stderr.print(f"[yellow]bay: {escape(reason)}; reconnecting in {delay:.1f}s[/]")

    with client_of(ctx) as gw:
        last = after
        for ev in gw.events(filters, after=after):
            show(ev)
            last = max(last, int(ev.get("sequence", 0)))
        if not follow:
            return
        try:
            for ev in sse.follow(gw, {"subject": render.stream_subject(kind, ident)}, last, dropped):
                if int(ev.get("sequence", 0)) > last and _matches(ev, kind, ident, type_):
                    last = int(ev["sequence"])
                    show(ev)
        except KeyboardInterrupt:
            return
