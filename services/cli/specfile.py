"""Reading group specs that humans wrote: YAML or JSON, one spec, a list, or several YAML documents.

Errors name the file and the line, so ``bay apply`` can say exactly what to fix before asking the
gateway (which validates the fields themselves).

YAML aliases (``*name``) are bounded before anything is expanded: PyYAML shares an alias's node, so
a few lines of nested aliases (a "billion laughs") load cheaply and then blow up to gigabytes when
the spec is turned into JSON for the gateway. A spec may use up to :data:`MAX_ALIASES` aliases and
expand to at most :data:`MAX_EXPANDED` (counted on the node graph, without expanding it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from services.cli.errors import CliError, ExitCode

#: aliases a file may use (a shared env block or two is what specs need)
MAX_ALIASES = 100
#: how large a document may become with its aliases expanded: scalars count their length, every
#: node one more; far above any spec the gateway takes (about 1 MiB)
MAX_EXPANDED = 4 * 1024 * 1024


class AliasLimitError(yaml.MarkedYAMLError):
    """Too many aliases, or a document that would expand too far (or into itself)."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting aliases while composing and measuring each document before
    constructing it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise AliasLimitError(None, None, f"more than {MAX_ALIASES} aliases (*name)", mark)
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def construct_document(self, node: yaml.Node) -> object:
        if self.aliases:
            _check_expanded(node)
        return super().construct_document(node)


def _check_expanded(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise AliasLimitError(None, None, "an alias refers to a node that contains it", node.start_mark)
        open_.add(key)
        if isinstance(node, yaml.ScalarNode):
            total = 1 + len(node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        else:
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        open_.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED:
            raise AliasLimitError(
                None, None, f"its aliases expand to more than {MAX_EXPANDED} bytes", node.start_mark
            )
        return total

    size(root)


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
            docs = [d for d in yaml.load_all(text, Loader=_BoundedLoader) if d is not None]
        except AliasLimitError as exc:
            mark = exc.problem_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            raise _bad(
                source,
                f"{where}{exc.problem} (refused before expanding it)",
                f"write the values out, or use at most {MAX_ALIASES} aliases",
            ) from exc
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
