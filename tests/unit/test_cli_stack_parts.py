"""The stack supervisor's pure parts: restart backoff, settings, exit descriptions."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from services.cli.stack.backoff import RestartBackoff
from services.cli.stack.output import Output, describe_exit
from services.cli.stack.settings import StackSettings, connect_address
from services.cli.stack.table import SERVICES


def test_backoff_doubles_to_the_cap_and_resets_after_a_good_run() -> None:
    b = RestartBackoff()
    assert [b.delay(0.5) for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.delay(61.0) == 1.0  # ran a minute: it was healthy, start over
    assert b.delay(3.0) == 2.0


def test_exit_descriptions() -> None:
    assert describe_exit(-9) == "signal 9"
    assert describe_exit(3) == "exit code 3"


def test_output_prefixes_lines() -> None:
    buf = io.StringIO()
    out = Output(buf, name_width=8)
    out.say("ready")
    out.child("gateway", "listening")
    assert buf.getvalue() == "bay: ready\ngateway  | listening\n"


def test_settings_defaults_bind_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("BAY_NATS_URL", "BAY_GATEWAY_LISTEN", "BAY_REGISTRY_LISTEN", "BAY_NATS_PORT", "BAY_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    s = StackSettings()
    assert not s.external_nats
    assert s.effective_nats_url == "nats://127.0.0.1:4250"
    assert s.gateway_url == "http://127.0.0.1:8080"
    assert s.registry_address == "127.0.0.1:50051"
    assert s.data_dir == Path(".bay")


def test_nats_url_in_the_environment_means_external(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAY_NATS_URL", "nats://127.0.0.1:4222")
    monkeypatch.setenv("BAY_NATS_PORT", "4999")
    s = StackSettings()
    assert s.external_nats
    assert s.effective_nats_url == "nats://127.0.0.1:4222"


def test_child_environment_is_explicit_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAY_NATS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    s = StackSettings(
        data_dir=Path("d"), gateway_listen="0.0.0.0:9000", registry_listen="127.0.0.1:9001", nats_port=9002
    )
    env = s.child_environment({"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert env["BAY_DATA_DIR"] == str(tmp_path / "d")
    assert env["BAY_TOKENS_FILE"] == str(tmp_path / "d" / "tokens.json")
    assert env["BAY_NATS_URL"] == "nats://127.0.0.1:9002"
    assert env["BAY_REGISTRY_ADDR"] == "127.0.0.1:9001"
    assert env["BAY_GATEWAY_LISTEN"] == "0.0.0.0:9000"
    assert s.gateway_url == "http://127.0.0.1:9000"  # reached on loopback


def test_connect_address() -> None:
    assert connect_address("0.0.0.0:80") == "127.0.0.1:80"
    assert connect_address("[::]:80") == "127.0.0.1:80"
    assert connect_address("10.0.0.1:80") == "10.0.0.1:80"


def test_service_table_names_are_unique_and_modules_importable() -> None:
    import importlib.util

    names = [s.name for s in SERVICES]
    assert len(set(names)) == len(names)
    assert {"registry", "gateway", "audit"} <= set(names)
    for s in SERVICES:  # `python -m` runs a module, or a package's __main__
        spec = importlib.util.find_spec(s.module)
        assert spec is not None, s.module
        if spec.submodule_search_locations is not None:
            assert importlib.util.find_spec(f"{s.module}.__main__") is not None, s.module
