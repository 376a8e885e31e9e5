"""Deployments as the CLI reads and shows them. Pure functions: ``--step`` parsing, the request
body of ``bay deploy``, and what ``bay rollout status`` and ``bay history`` print."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Group as Rows
from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from services.cli.errors import CliError
from services.cli.render import short_time

JSON = dict[str, Any]

#: a deployment in one of these states is over
STEP_HELP = (
    "share=F (a fraction of the instances), weight=P (percent of traffic), pause=S or pause "
    "(until promoted), analysis=S or analysis=S:METRIC OP VALUE,... "
    "(e.g. analysis=60:failed_tasks<=0,cpu<0.8)"
)
_THRESHOLD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_:.-]*)\s*(<=|>=|<|>)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def _number(text: str, step: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CliError(f"--step {step}: {text!r} is not a number", hint=STEP_HELP) from None


def parse_step(text: str) -> JSON:
    """One ``--step`` as the REST API's canary step (``{"set_share": 0.2}``...)."""
    kind, has_value, value = text.partition("=")
    kind = kind.strip().lower()
    if kind == "pause":
        return {"pause": {"seconds": _number(value, text)} if has_value else {}}
    if not has_value:
        raise CliError(f"--step {text}: give a value ({kind}=...)", hint=STEP_HELP)
    if kind == "share":
        share = value.strip()
        fraction = _number(share[:-1], text) / 100 if share.endswith("%") else _number(share, text)
        return {"set_share": fraction}
    if kind == "weight":
        return {"set_weight": _number(value.strip().removesuffix("%"), text)}
    if kind == "analysis":
        seconds, _, checks = value.partition(":")
        analysis: JSON = {"seconds": _number(seconds, text)}
        thresholds = []
        for check in filter(None, (c.strip() for c in checks.split(","))):
            m = _THRESHOLD.match(check)
            if m is None:
                raise CliError(f"--step {text}: {check!r} is not METRIC OP VALUE", hint=STEP_HELP)
            thresholds.append({"metric": m.group(1), "op": m.group(2), "value": float(m.group(3))})
        if thresholds:
            analysis["thresholds"] = thresholds
        return {"analysis": analysis}
    raise CliError(f"--step {text}: unknown step {kind!r}", hint=STEP_HELP)


def deploy_body(
    *,
    build: str = "",
    spec: JSON | None = None,
    cluster: str = "",
    strategy: str = "",
    steps: list[str] | None = None,
    min_ready: float | None = None,
    deadline: float | None = None,
    min_health: float | None = None,
    max_over: float | None = None,
    scale_down_delay: float | None = None,
    no_auto_rollback: bool = False,
    auto_promote: bool = False,
    supersede: bool = False,
    reason: str = "",
) -> JSON:
    """The body of ``POST /v1/groups/{name}/deploy``; what is not given is left out (the deployer
    defaults it from the group's upgrade_strategy)."""
    parsed = [parse_step(s) for s in steps or []]
    kind = strategy or ("canary" if parsed else "")
    options: JSON = {
        "kind": kind or None,
        "minimum_health_capacity": min_health,
        "maximum_over_capacity": max_over,
        "min_ready_seconds": min_ready,
        "progress_deadline_seconds": deadline,
        "scale_down_delay_seconds": scale_down_delay,
    }
    body: JSON = {"strategy": {k: v for k, v in options.items() if v is not None}}
    if parsed:
        body["strategy"]["steps"] = parsed
    if no_auto_rollback:
        body["strategy"]["no_auto_rollback"] = True
    if auto_promote:
        body["strategy"]["auto_promote"] = True
    for key, value in (("build", build), ("spec", spec), ("cluster", cluster), ("reason", reason)):
        if value:
            body[key] = value
    if supersede:
        body["supersede"] = True
    return body


# ---- showing one ----


def version_of(d: JSON, side: str) -> str:
    """``v3 (web-42)`` or ``v3``; with the cluster when the deployment moves the group."""
    version = d.get(f"{side}_version") or "?"
    build = d.get(f"{side}_build") or ""
    text = f"v{version}" + (f" ({build})" if build else "")
    if d.get("from_cluster") != d.get("to_cluster") and d.get(f"{side}_cluster"):
        text += f" on {d[f'{side}_cluster']}"
    return text


def headline(d: JSON) -> str:
    """``web-3 canary v2 (web-41) -> v3 (web-42): running, step 2/5 pause 30s``"""
    strategy = (d.get("strategy") or {}).get("kind", "")
    steps = d.get("steps") or []
    at = int(d.get("current_step", 0))
    where = ""
    if steps and d.get("state") in ("running", "paused") and at < len(steps):
        where = f", step {at + 1}/{len(steps)} {steps[at].get('name', '')}"
    reason = f" ({d['reason']})" if d.get("reason") else ""
    return (
        f"{d.get('id', '')} {strategy} {version_of(d, 'from')} -> {version_of(d, 'to')}: "
        f"{d.get('state', '')}{where}{reason}"
    )


def counts_line(d: JSON) -> str:
    instances = int(d.get("instances", 0))
    return (
        f"{d.get('new_ready', 0)}/{instances} new ready, {d.get('new_running', 0)} new running, "
        f"{d.get('old_running', 0)} old running (bounds: >= {d.get('min_ready', 0)} ready, "
        f"<= {d.get('max_running', 0)} running)"
    )


def steps_table(d: JSON) -> Table:
    table = Table("#", "step", "state", "started", "finished", "message", box=None, pad_edge=False)
    styles = {"running": "bold yellow", "done": "green", "failed": "red", "pending": "dim"}
    for i, step in enumerate(d.get("steps") or [], 1):
        state = str(step.get("state", ""))
        table.add_row(
            str(i),
            str(step.get("name", "")),
            Text(state, style=styles.get(state, "")),
            short_time(step.get("started")),
            short_time(step.get("finished")),
            str(step.get("message", "")),
        )
    return table


def status_view(d: JSON) -> RenderableType:
    """What ``bay rollout status`` shows: the headline, the steps, a bar of new ready / instances."""
    instances = max(int(d.get("instances", 0)), 1)
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=instances, completed=min(int(d.get("new_ready", 0)), instances), width=40),
        counts_line(d),
    )
    return Rows(Text(headline(d), style="bold"), steps_table(d), bar)


def _order(d: JSON) -> tuple[str, int]:
    number = str(d.get("id", "")).rsplit("-", 1)[-1]
    return str(d.get("created", "")), int(number) if number.isdigit() else 0


def deployments_table(deployments: list[JSON]) -> Table:
    """For ``bay history``: one row per deployment, oldest first."""
    table = Table(
        "id", "strategy", "from", "to", "state", "reason", "created", "updated", box=None, pad_edge=False
    )
    for d in sorted(deployments, key=_order):
        table.add_row(
            str(d.get("id", "")),
            str((d.get("strategy") or {}).get("kind", "")),
            version_of(d, "from"),
            version_of(d, "to"),
            str(d.get("state", "")),
            str(d.get("reason", "")),
            short_time(d.get("created")),
            short_time(d.get("updated")),
        )
    return table
