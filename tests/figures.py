"""The figures tests record (``record_property("figure", text)``), printed in pytest's terminal
summary under a heading of their own: a ``pytest_terminal_summary`` hook of a conftest calls
:func:`print_figures`."""

from __future__ import annotations

import pytest


def print_figures(terminalreporter: pytest.TerminalReporter, title: str, under: str = "") -> None:
    """Every ``figure`` of the tests that ran (those whose node id contains ``under``)."""
    figures = [
        f"{r.nodeid.rsplit('::', 1)[-1]}: {value}"
        for kind in ("passed", "failed")
        for r in terminalreporter.stats.get(kind, [])
        if getattr(r, "when", "") == "call" and under in r.nodeid
        for name, value in r.user_properties
        if name == "figure"
    ]
    if figures:
        terminalreporter.section(title)
        for line in figures:
            terminalreporter.line(line)
