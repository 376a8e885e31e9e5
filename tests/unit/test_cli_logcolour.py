"""`bay logs GROUP` colours each task's prefix on a terminal only, one colour per task, and keeps
the bytes as they came otherwise (lines cut across chunks are put together first)."""

from __future__ import annotations

import io

import pytest

from services.cli.logcolour import PALETTE, PrefixColours, wants_colour


class Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_each_task_gets_its_own_colour_and_lines_split_across_chunks_are_whole() -> None:
    out = io.BytesIO()
    colours = PrefixColours(out)
    colours.write(b"web.a | one\nweb.b | t")
    colours.write(b"wo\nweb.a | three | with a bar\nno prefix\nweb.c | par")
    colours.close()
    a, b, c = (b"\x1b[" + PALETTE[i] + b"m" for i in range(3))
    assert out.getvalue() == (
        a + b"web.a\x1b[0m | one\n"
        + b + b"web.b\x1b[0m | two\n"
        + a + b"web.a\x1b[0m | three | with a bar\n"
        + b"no prefix\n"
        + c + b"web.c\x1b[0m | par"
    )  # fmt: skip


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert wants_colour(Terminal()) and not wants_colour(io.BytesIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(Terminal())
