"""``bay nats``: the platform's NATS users, local admin operations on the data directory (no gateway).

- ``init``: the seeds of the set-up and of every service (schedulers by cluster) and the
  authorization block nats-server includes: for a NATS that ``bay up`` does not start (docker-compose).
- ``setup``: the stream and the lease bucket, made as the set-up user (``bay up`` does it itself).
- ``audit-credential NAME``: a read-only user for an audit system outside Bay. The users are a file
  nats-server includes, so a new one means writing it again and having nats-server reload it
  (SIGHUP: connections of the other users stay up); ``bay up``'s own nats-server is told here.
- ``metrics-credential GROUP``: the user a publisher of the group's custom metrics connects as:
  it may publish ``bay.metric.<GROUP>.<name>`` and nothing else (tasks get no NATS rights by
  default). Made once, the same seed after; ``--rotate`` a new seed, ``--revoke`` none. Written and
  reloaded as ``audit-credential`` is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from libs.errors import BayError
from libs.events import subjects
from libs.natsconn import connect
from libs.natscreds import NatsCredentials, redact_url
from libs.natssetup import DEFAULT_LEASE_SECONDS, set_up
from libs.natsusers import NatsUsers, reload_server
from services.cli.app import settings_of, stderr
from services.cli.errors import CliError, ExitCode

AuthConfig = Annotated[
    Path | None,
    typer.Option(
        "--auth-config",
        help="Also write the authorization block here (a file the NATS nodes include).",
    ),
]


def _users(ctx: typer.Context) -> NatsUsers:
    s = settings_of(ctx)
    return NatsUsers(s.data_dir, s.stream)


def init(
    ctx: typer.Context,
    cluster: Annotated[
        list[str] | None, typer.Option("--cluster", help="A cluster whose scheduler needs a user (repeat).")
    ] = None,
    auth_config: AuthConfig = None,
) -> None:
    """Make the NATS users of the set-up and every service, and their authorization block."""
    users = _users(ctx)
    roles = [
        "setup",
        "registry",
        "deployer",
        "autoscaler",
        "dns",
        "gateway",
        "audit",
        *(f"scheduler-{c}" for c in cluster or []),
    ]
    try:
        written = users.write_auth_config(roles)
        if auth_config is not None:
            written = users.write_auth_config(path=auth_config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stderr.print(f"NATS users in {escape(str(users.root))}; authorization block in {escape(str(written))}")
    for role in roles:
        typer.echo(f"{role}\t{users.seed_path(role)}")


def setup(
    ctx: typer.Context,
    lease_seconds: Annotated[
        list[float] | None, typer.Option("--lease-seconds", help="The schedulers' lease TTL (repeat).")
    ] = None,
) -> None:
    """Create or update the event stream and the lease bucket, as the set-up user.

    Credentials: BAY_NATS_* if given, else the set-up seed in the data directory."""
    s = settings_of(ctx)
    creds = s.nats_credentials()
    own = NatsUsers(s.data_dir, s.stream).seed_path("setup")
    if creds == NatsCredentials() and own.exists():
        creds = NatsCredentials(nkey_seed=own)

    async def run() -> None:
        conn = await connect(s.nats_url, name="bay-setup", wait_seconds=10, credentials=creds)
        try:
            await set_up(conn, s, lease_seconds or [DEFAULT_LEASE_SECONDS], wait_seconds=10)
        finally:
            await conn.close()

    try:
        asyncio.run(run())
    except BayError as exc:
        raise CliError(f"the set-up failed: {exc.message}", hint=exc.hint) from None
    stderr.print(f"stream {escape(s.stream)} ready on {escape(redact_url(s.nats_url))} ({creds.describe()})")


def _write_and_reload(users: NatsUsers, data_dir: Path, auth_config: Path | None) -> str:
    """The authorization block written (and at ``auth_config``), ``bay up``'s nats-server told."""
    users.write_auth_config()
    if auth_config is not None:
        users.write_auth_config(path=auth_config)
    pid = reload_server(data_dir / "nats" / "bay-nats.pid")
    return (
        f"the running nats-server (pid {pid}) reloaded it"
        if pid
        else "no running `bay up` nats-server to reload"
    )


def audit_credential(ctx: typer.Context, name: str, auth_config: AuthConfig = None) -> None:
    """Make a read-only NATS user for an audit system outside Bay; prints its seed file.

    It may read every event (`bay.ev.>`) with consumers of its own; it may not publish, nor change
    or delete the stream."""
    s = settings_of(ctx)
    users = NatsUsers(s.data_dir, s.stream)
    try:
        seed = users.audit_seed(name)
        told = _write_and_reload(users, s.data_dir, auth_config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    typer.echo(str(seed))
    stderr.print(
        f"audit credential {escape(name)}: nkey seed in {escape(str(seed))} (keep it secret; "
        f"connect with nkeys_seed=<that file>); {told}",
        soft_wrap=True,  # a path cut in two is no path
    )


#: what a metric publisher sends (libs/samples/pushed.py reads it)
PAYLOAD = 'a number (12.5) or JSON {"value": 12.5, "task": "<task id>"}'


def metrics_credential(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The group whose custom metrics it publishes.")],
    rotate: Annotated[bool, typer.Option("--rotate", help="A new seed; the old one stops working.")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Remove the group's publisher user.")] = False,
    auth_config: AuthConfig = None,
) -> None:
    """Make the NATS user a publisher of GROUP's custom metrics connects as; prints its seed file.

    It may publish `bay.metric.GROUP.<name>` and nothing else: no other group's metrics, no event,
    no subscription. Run again, it gives the same seed; --rotate makes a new one, --revoke removes
    the user. The group need not exist yet."""
    if rotate and revoke:
        raise CliError("--rotate and --revoke: give one of them")
    s = settings_of(ctx)
    users = NatsUsers(s.data_dir, s.stream)
    try:
        seed = users.metrics_seed_path(group)  # a bad group name stops here, before any write
        if revoke and not users.revoke_metrics(group):
            raise CliError(f"group {group} has no metrics credential in {users.root}", ExitCode.NOT_FOUND)
        existed = seed.exists()
        if not revoke:
            users.metrics_seed(group, rotate=rotate)
        told = _write_and_reload(users, s.data_dir, auth_config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if revoke:
        stderr.print(f"metrics credential of group {escape(group)} revoked; {told}", soft_wrap=True)
        return
    typer.echo(str(seed))
    if not existed:
        what = "made"
    elif rotate:
        what = "a new seed (nats-server refuses the old one once it reloads)"
    else:
        what = "the same seed as before (--rotate for a new one)"
    stderr.print(
        f"metrics credential of group {escape(group)}: {what}; nkey seed in {escape(str(seed))} "
        f"(keep it secret); {told}.\n"
        f"A publisher connects to {escape(redact_url(s.nats_url))} with nkeys_seed=<that file> and "
        f"publishes on {escape(subjects.metric(group, '<name>'))} {escape(PAYLOAD)}; nothing else "
        "is allowed.",
        soft_wrap=True,  # a path cut in two is no path
    )
