"""The stack supervisor's pure parts: restart backoff, settings, exit descriptions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.cli.stack.backoff import RestartBackoff
from services.cli.stack.output import Output, describe_exit
from services.cli.stack.readiness import clusters_of
from services.cli.stack.settings import StackSettings, connect_address
from services.cli.stack.table import SERVICES, SOURCE_ROOT, services_for


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
    assert {"registry", "scheduler", "gateway", "audit"} <= set(names)
    for s in SERVICES:  # `python -m` runs a module, or a package's __main__
        spec = importlib.util.find_spec(s.module)
        assert spec is not None, s.module
        if spec.submodule_search_locations is not None:
            assert importlib.util.find_spec(f"{s.module}.__main__") is not None, s.module


def test_the_scheduler_of_local_runs_and_the_gateway_is_told_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("BAY_NATS_URL", "BAY_SCHEDULER_LISTEN", "BAY_SIM_CLUSTER", "BAY_SIM_SCHEDULER_LISTEN"):
        monkeypatch.delenv(var, raising=False)
    s = StackSettings(data_dir=tmp_path, scheduler_listen="0.0.0.0:9100")
    env = s.child_environment({"BAY_CLUSTER": "elsewhere", "BAY_BACKEND": "mesos"})
    assert json.loads(env["BAY_SCHEDULERS"]) == {"local": "127.0.0.1:9100"}
    assert (env["BAY_CLUSTER"], env["BAY_SCHEDULER_LISTEN"], env["BAY_BACKEND"]) == (
        "local",
        "0.0.0.0:9100",
        "",
    )
    (sched,) = [svc for svc in services_for(s) if svc.module == "services.scheduler"]
    assert sched.cluster == "local" and sched.listen is not None
    assert sched.listen(s) == ("BAY_SCHEDULER_LISTEN", "0.0.0.0:9100")


def test_the_dns_service_runs_and_the_gateway_is_told_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("BAY_DNS_LISTEN", "BAY_DNS_GRPC_LISTEN", "BAY_DNS_ADDR"):
        monkeypatch.delenv(var, raising=False)
    defaults = StackSettings(data_dir=tmp_path)
    assert (defaults.dns_listen, defaults.dns_grpc_address) == ("127.0.0.1:1053", "127.0.0.1:50071")
    s = StackSettings(data_dir=tmp_path, dns_listen="0.0.0.0:9300", dns_grpc_listen="0.0.0.0:9301")
    env = s.child_environment({"BAY_DNS_ADDR": "elsewhere:1"})
    assert (env["BAY_DNS_LISTEN"], env["BAY_DNS_GRPC_LISTEN"]) == ("0.0.0.0:9300", "0.0.0.0:9301")
    assert env["BAY_DNS_ADDR"] == "127.0.0.1:9301"  # the gateway reaches it on loopback
    (dns,) = [svc for svc in services_for(s) if svc.module == "services.dns"]
    assert dns.name == "dns" and dns.probe is not None and dns.listen is not None
    assert dns.listen(s) == ("BAY_DNS_LISTEN", "0.0.0.0:9300")


def test_a_simulated_cluster_adds_the_simulator_and_its_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BAY_NATS_URL", raising=False)
    s = StackSettings(
        data_dir=tmp_path,
        sim_cluster="sim",
        sim_agents=5,
        sim_port=9200,
        sim_scheduler_listen="127.0.0.1:9201",
    )
    assert s.schedulers == {"local": "127.0.0.1:50061", "sim": "127.0.0.1:9201"}
    assert json.loads(s.child_environment({})["BAY_SCHEDULERS"])["sim"] == "127.0.0.1:9201"
    extra = {svc.name for svc in services_for(s)} - {svc.name for svc in SERVICES}
    assert extra == {"mesos-sim", "scheduler-sim"}
    by_name = {svc.name: svc for svc in services_for(s)}
    sim, sched = by_name["mesos-sim"], by_name["scheduler-sim"]
    assert sim.module == "tests.mesos_sim" and sim.args is not None
    assert sim.args(s) == ["--port", "9200", "--agents", "5"]
    assert sim.env is not None and sim.env(s)["PYTHONPATH"] == str(SOURCE_ROOT)
    assert (SOURCE_ROOT / "tests" / "mesos_sim" / "__init__.py").exists()
    assert sched.env is not None and sched.env(s) == {
        "BAY_CLUSTER": "sim",
        "BAY_SCHEDULER_LISTEN": "127.0.0.1:9201",
    }
    assert sched.cluster == "sim"
    # each registered with where its scheduler listens: what the gateway is told, too
    assert [(c.name, c.backend, c.address, c.scheduler_address) for c in clusters_of(s)] == [
        ("local", "local", "", s.scheduler_address),
        ("sim", "mesos", "127.0.0.1:9200", "127.0.0.1:9201"),
    ]
    assert {c.name: c.scheduler_address for c in clusters_of(s)} == s.schedulers


@pytest.mark.parametrize("name", ["local", "Bad_Name", "-x"])
def test_a_simulated_cluster_needs_a_name_of_its_own(name: str) -> None:
    with pytest.raises(ValidationError):
        StackSettings(sim_cluster=name)
