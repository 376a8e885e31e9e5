"""Build commands: ``bay build register``, ``bay build show ID`` and ``bay builds``.

A build is registered once, by CI, and then deployed by id to any cluster: an image pinned by digest
(``--image NAME@sha256:...``), or an artifact the task fetches into its sandbox (``--artifact URI``,
checked against ``--sha256``) plus the command that runs it (``--cmd``). For a ``file://`` artifact
the digest may be left out: it is computed here from the file (CI has it at hand).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from services.cli import render
from services.cli.app import DocOutput, Output, client_of, print_doc, stdout_console
from services.cli.errors import CliError, ExitCode

build_app = typer.Typer(
    help="Builds: registered once (an image by digest, or an artifact and its command), deployed by id.",
    no_args_is_help=True,
)


def file_sha256(uri: str) -> str:
    """The sha256 of a ``file://`` artifact on this machine."""
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise CliError(
            f"--sha256 is needed for {uri!r}",
            ExitCode.USAGE,
            "only a file:// artifact's digest is computed here",
        )
    path = Path(unquote(parts.path))
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise CliError(f"cannot read the artifact {path}: {exc.strerror}", ExitCode.USAGE) from exc
    return digest.hexdigest()


def _metadata(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--meta {item!r} is not KEY=VALUE", code=ExitCode.USAGE)
        out[key] = value
    return out


def what_runs(build: dict[str, Any]) -> str:
    """The image, or the artifact's URI (and its digest's start)."""
    artifact = build.get("artifact")
    if artifact:
        return f"{artifact['uri']} (sha256 {artifact['sha256'][:12]})"
    return str(build.get("image", ""))


@build_app.command("register")
def register(
    ctx: typer.Context,
    id_: Annotated[str, typer.Option("--id", help="The build's id, e.g. api-1.4.2 or api-<commit>.")],
    image: Annotated[str, typer.Option(help="An image pinned by digest: NAME@sha256:<64 hex>.")] = "",
    artifact: Annotated[str, typer.Option(help="Or an artifact: file:///... or http(s)://...")] = "",
    sha256: Annotated[
        str, typer.Option(help="The artifact's sha256 (computed from the file for a file:// artifact).")
    ] = "",
    extract: Annotated[bool, typer.Option("--extract", help="Unpack the artifact (tar, zip).")] = False,
    executable: Annotated[bool, typer.Option("--executable", help="chmod +x the artifact.")] = False,
    cmd: Annotated[str, typer.Option(help="With --artifact: the command that runs it.")] = "",
    commit: Annotated[str, typer.Option(help="The commit it was built from.")] = "",
    branch: Annotated[str, typer.Option(help="The branch it was built from.")] = "",
    built_by: Annotated[str, typer.Option(help="Who built it (default: your token's name).")] = "",
    meta: Annotated[list[str] | None, typer.Option(help="Free metadata KEY=VALUE (repeatable).")] = None,
) -> None:
    """Register a build once; registering the same build again changes nothing."""
    if bool(image) == bool(artifact):
        raise CliError("give --image or --artifact (with --cmd), one of them", code=ExitCode.USAGE)
    body: dict[str, Any] = {
        "id": id_,
        "commit": commit,
        "branch": branch,
        "built_by": built_by,
        "metadata": _metadata(meta or []),
    }
    if image:
        body["image"] = image
    else:
        digest = sha256.lower() or file_sha256(artifact)
        body["artifact"] = {"uri": artifact, "sha256": digest, "extract": extract, "executable": executable}
        body["cmd"] = cmd
    with client_of(ctx) as gw:
        build = gw.request("POST", "/v1/builds", json=body, mutation=True)
    stdout_console().print(f"build {escape(build['id'])} registered: {escape(what_runs(build))}")


@build_app.command("show")
def show(
    ctx: typer.Context,
    id_: Annotated[str, typer.Argument(metavar="ID", help="The build's id.")],
    output: Annotated[DocOutput, typer.Option("-o", "--output")] = DocOutput.yaml,
) -> None:
    """Show one build: what it runs, its commit, branch, builder and metadata."""
    with client_of(ctx) as gw:
        print_doc(gw.request("GET", f"/v1/builds/{id_}"), output.value)


def builds(
    ctx: typer.Context, output: Annotated[Output, typer.Option("-o", "--output")] = Output.table
) -> None:
    """Registered builds: id, what runs (image or artifact), commit, branch, builder, age."""
    with client_of(ctx) as gw:
        found = gw.request("GET", "/v1/builds").get("builds", [])
    if output != Output.table:
        print_doc({"builds": found}, output.value)
        return
    table = Table("ID", "RUNS", "COMMIT", "BRANCH", "BUILT BY", "REGISTERED", box=None)
    for b in found:
        table.add_row(
            escape(b["id"]),
            escape(what_runs(b)),
            escape(b.get("commit") or "-"),
            escape(b.get("branch") or "-"),
            escape(b.get("built_by") or "-"),
            render.short_time(b.get("registered")),
        )
    stdout_console().print(table)
