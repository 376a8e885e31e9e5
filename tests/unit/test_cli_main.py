"""The ``bay`` app in-process for what needs no gateway: usage errors, local token commands, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.auth import TokenStore
from services.cli.errors import ExitCode
from services.cli.main import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / ".bay"
    monkeypatch.setenv("BAY_DATA_DIR", str(data))
    monkeypatch.setenv("BAY_GATEWAY_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    for var in ("BAY_TOKEN", "BAY_TOKENS_FILE"):
        monkeypatch.delenv(var, raising=False)
    return data


def test_usage_errors_exit_1_not_clicks_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app(args=["scale", "web"]) == ExitCode.USAGE
    assert "Missing argument" in capsys.readouterr().err
    assert app(args=["scale", "web", "many"]) == ExitCode.USAGE
    assert app(args=["no-such-command"]) == ExitCode.USAGE


def test_help_lists_the_exit_codes(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app(args=["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "2 not found (404)" in out and "5 unavailable" in out


def test_token_create_prints_a_working_token_once(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app(args=["token", "create", "ci", "--role", "operator"]) == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert token.startswith("bay_")
    assert token not in captured.err
    store = TokenStore(env / "tokens.json")
    assert store.authenticate(f"Bearer {token}", needed="operator").name == "ci"
    assert token not in (env / "tokens.json").read_text()  # stored hashed
    assert app(args=["token", "list"]) == 0
    assert capsys.readouterr().out.strip() == "ci\toperator"


def test_token_create_rejects_an_unknown_role(env: Path) -> None:
    assert app(args=["token", "create", "ci", "--role", "root"]) == ExitCode.USAGE
    assert not (env / "tokens.json").exists()


def test_no_token_is_an_auth_error_with_a_hint(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app(args=["get", "groups"]) == ExitCode.AUTH
    err = capsys.readouterr().err
    assert "no token" in err and "bay up" in err


def test_unreachable_gateway_exits_5(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAY_TOKEN", "bay_x")
    assert app(args=["get", "groups"]) == ExitCode.UNAVAILABLE
    assert "gateway not reachable at http://127.0.0.1:9: is `bay up` running?" in " ".join(
        capsys.readouterr().err.split()
    )


def test_apply_reports_a_broken_file_before_calling_anyone(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAY_TOKEN", "bay_x")
    bad = tmp_path / "g.json"
    bad.write_text(json.dumps({"cmd": "sleep 1"}))
    assert app(args=["apply", "-f", str(bad)]) == ExitCode.USAGE
    assert "has no `name`" in capsys.readouterr().err


def test_up_refuses_a_simulated_cluster_named_local(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app(args=["up", "--sim-cluster", "local"]) == ExitCode.USAGE
    assert "sim_cluster" in capsys.readouterr().err
    assert not env.exists(), "nothing was started"


def test_scale_wait_timeout_must_be_positive(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app(args=["scale", "web", "3", "--wait", "--timeout", "0"]) == ExitCode.USAGE
    assert "--timeout" in capsys.readouterr().err


def test_task_commands_are_listed(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app(args=["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("tasks", "task", "logs", "kill"):
        assert f"│ {name} " in out, name
    assert app(args=["logs", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--follow" in help_text and "--stderr" in help_text and "--tail" in help_text
