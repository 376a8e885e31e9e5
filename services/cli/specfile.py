"""Reading group specs that humans wrote: YAML or JSON, one spec, a list, or several YAML documents.

Errors name the file and the line, so ``bay apply`` can say exactly what to fix before asking the
gateway (which validates the fields themselves).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from services.cli.errors import CliError, ExitCode


def _bad(source: str, what: str, hint: str = "") -> CliError:
    return CliError(
        f"{source}: {what}", ExitCode.USAGE, hint or "a group spec is a mapping with at least `name`"
    )


def parse_specs(text: str, source: str = "<stdin>") -> list[dict[str, Any]]:
    """The group specs in ``text`` (JSON when it looks like JSON, else YAML)."""
    stripped = text.lstrip()
    if not stripped:
        raise _bad(source, "is empty: no group spec in it")
    docs: list[Any]
    if source.endswith(".json") or stripped[0] in "[{":
        try:
            docs = [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise _bad(
                source,
                f"line {exc.lineno}, column {exc.colno}: {exc.msg} (not valid JSON)",
                "check the JSON syntax near that position",
            ) from exc
    else:
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            raise _bad(
                source,
                f"{where}{exc.problem or exc} (not valid YAML)",
                "check the indentation and the `key: value` syntax near that position",
            ) from exc
        except yaml.YAMLError as exc:
            raise _bad(source, f"not valid YAML: {exc}") from exc
    specs: list[Any] = []
    for doc in docs:
        specs.extend(doc if isinstance(doc, list) else [doc])
    if not specs:
        raise _bad(source, "holds no group spec")
    for i, spec in enumerate(specs):
        where = f"spec #{i + 1}" if len(specs) > 1 else "the spec"
        if not isinstance(spec, dict):
            raise _bad(source, f"{where} is a {type(spec).__name__}, not a mapping")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(source, f"{where} has no `name`", "every group spec needs `name: <dns-label>`")
    return specs


def read_specs(path: str, stdin_text: str | None = None) -> list[dict[str, Any]]:
    """Specs from a file, or from standard input when ``path`` is ``-``."""
    if path == "-":
        return parse_specs(stdin_text or "", "<stdin>")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text", ExitCode.USAGE) from exc
    return parse_specs(text, path)
