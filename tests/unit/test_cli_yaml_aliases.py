"""YAML aliases in a spec file are bounded before they are expanded (issue 10): a few shared blocks
are fine; an alias bomb, too many aliases or an alias into itself is a clear usage error."""

from __future__ import annotations

import pytest

from services.cli.errors import CliError, ExitCode
from services.cli.specfile import MAX_ALIASES, MAX_EXPANDED, parse_specs


def alias_bomb(levels: int = 8, width: int = 9) -> str:
    """The "billion laughs": each level a list of ``width`` aliases of the level below."""
    lines = ["name: bomb", "cmd: sleep 1", "labels:", f"  l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_few_aliases_are_expanded_as_yaml_says() -> None:
    text = "- name: a\n  cmd: x\n  env: &common {LOG: debug}\n- name: b\n  cmd: y\n  env: *common\n"
    assert [s["env"] for s in parse_specs(text, "g.yaml")] == [{"LOG": "debug"}, {"LOG": "debug"}]


def test_an_alias_bomb_is_refused_naming_the_line() -> None:
    with pytest.raises(CliError) as info:
        parse_specs(alias_bomb(), "bomb.yaml")
    assert info.value.code == ExitCode.USAGE
    assert info.value.message.startswith("bomb.yaml: line ")
    assert f"expand to more than {MAX_EXPANDED} bytes" in info.value.message
    assert "refused before expanding" in info.value.message


def test_too_many_aliases_are_refused() -> None:
    args = ", ".join(["*one"] * (MAX_ALIASES + 1))
    with pytest.raises(CliError) as info:
        parse_specs(f"name: a\ncmd: x\nv: &one 1\nargs: [{args}]\n", "many.yaml")
    assert f"more than {MAX_ALIASES} aliases" in info.value.message


def test_an_alias_into_itself_is_refused() -> None:
    with pytest.raises(CliError) as info:
        parse_specs("name: a\ncmd: x\nargs: &loop [1, *loop]\n", "loop.yaml")
    assert "contains it" in info.value.message
