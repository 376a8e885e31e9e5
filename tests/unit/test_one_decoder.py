"""No service decodes an event payload itself: ``libs.events`` is the one decoder of the log."""

from __future__ import annotations

import ast
from pathlib import Path

from libs.events import EVENT_TYPES

SERVICES = Path(__file__).resolve().parents[2] / "services"


def offences(source: str) -> list[str]:
    """Where a module reads a payload's bytes, unpacks it, or parses an event type's message."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            inner = node.value
            if (
                isinstance(inner, ast.Attribute)
                and inner.attr == "payload"
                and node.attr in ("value", "Unpack")
            ):
                found.append(f"line {node.lineno}: payload.{node.attr}")
            if node.attr in ("FromString", "ParseFromString") and isinstance(inner, ast.Attribute):
                if inner.attr in EVENT_TYPES:
                    found.append(f"line {node.lineno}: {inner.attr}.{node.attr}")
        if isinstance(node, ast.Name) and node.id in ("payload_message", "DECODERS"):
            found.append(f"line {node.lineno}: {node.id}")
    return found


def test_the_check_finds_what_it_looks_for() -> None:
    bad = (
        "from bay.v1 import group_pb2\n"
        "def f(env):\n"
        "    a = group_pb2.GroupScaled.FromString(env.payload.value)\n"
        "    env.payload.Unpack(a)\n"
    )
    assert len(offences(bad)) == 3
    assert offences("def f(env):\n    return snapshot_pb2.RegistrySnapshot.FromString(env)\n") == []


def test_no_service_decodes_event_payloads_itself() -> None:
    found = {
        str(path.relative_to(SERVICES)): hits
        for path in sorted(SERVICES.rglob("*.py"))
        if (hits := offences(path.read_text()))
    }
    assert found == {}, f"decode events through libs.events, not by hand: {found}"
