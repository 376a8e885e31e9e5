"""Reading group specs from YAML/JSON: what is accepted, and errors that say where the problem is."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.errors import CliError, ExitCode
from services.cli.specfile import parse_specs, read_specs


def test_one_yaml_spec() -> None:
    specs = parse_specs("name: web\ncmd: sleep 100\ninstances: 2\n", "g.yaml")
    assert specs == [{"name": "web", "cmd": "sleep 100", "instances": 2}]


def test_several_yaml_documents_and_lists() -> None:
    text = "name: a\ncmd: x\n---\n- name: b\n  cmd: y\n- name: c\n  cmd: z\n"
    assert [s["name"] for s in parse_specs(text, "g.yaml")] == ["a", "b", "c"]


def test_json_spec() -> None:
    assert parse_specs('{"name": "web", "image": "nginx"}', "g.json") == [{"name": "web", "image": "nginx"}]


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(CliError) as info:
        parse_specs("name: web\ncmd: [unclosed\ninstances: 2\n", "group.yaml")
    assert info.value.code == ExitCode.USAGE
    assert info.value.message.startswith("group.yaml: line ")
    assert "not valid YAML" in info.value.message


def test_bad_json_names_line_and_column() -> None:
    with pytest.raises(CliError) as info:
        parse_specs('{"name": "web",\n "cmd": }', "g.json")
    assert "g.json: line 2, column 9" in info.value.message
    assert "not valid JSON" in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("---\n", "holds no group spec"),
        ("just a string\n", "is a str, not a mapping"),
        ("cmd: sleep 1\n", "has no `name`"),
        ("name: a\ncmd: x\n---\n- 3\n", "spec #2 is a int"),
    ],
)
def test_shapes_that_are_not_specs(text: str, expected: str) -> None:
    with pytest.raises(CliError) as info:
        parse_specs(text, "f.yaml")
    assert expected in info.value.message
    assert info.value.code == ExitCode.USAGE


def test_read_specs_from_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("name: web\ncmd: sleep 1\n")
    assert read_specs(str(path))[0]["name"] == "web"
    assert read_specs("-", "name: other\ncmd: x\n")[0]["name"] == "other"
    with pytest.raises(CliError) as info:
        read_specs(str(tmp_path / "missing.yaml"))
    assert "cannot read" in info.value.message and "No such file" in info.value.message
