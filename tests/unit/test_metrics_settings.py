"""The metrics listeners' settings: each process's default is its fixed one (libs/defaults), `bay up`
gives every process its own and lists them all for service discovery, compose keeps them inside its
network, and a bad address names the variable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from libs import defaults
from services.autoscaler.settings import AutoscalerSettings
from services.cli.stack.settings import StackSettings
from services.cli.stack.supervisor import _metrics_env
from services.cli.stack.table import services_for
from services.deployer.settings import DeployerSettings
from services.dns.settings import DnsSettings
from services.gateway.settings import GatewaySettings
from services.registry.settings import RegistrySettings
from services.scheduler.settings import SchedulerSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_bay_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("BAY_")]:
        monkeypatch.delenv(name)


def test_each_process_defaults_to_its_fixed_port_and_the_stack_agrees() -> None:
    stack = StackSettings()
    assert (
        RegistrySettings().metrics_listen
        == stack.registry_metrics_listen
        == defaults.REGISTRY_METRICS_ADDRESS
    )
    assert SchedulerSettings().metrics_listen == stack.scheduler_metrics_listen == "127.0.0.1:9311"
    assert DeployerSettings().metrics_listen == stack.deployer_metrics_listen == "127.0.0.1:9313"
    assert AutoscalerSettings().metrics_listen == stack.autoscaler_metrics_listen == "127.0.0.1:9314"
    assert DnsSettings().metrics_listen == stack.dns_metrics_listen == "127.0.0.1:9315"
    assert stack.sim_scheduler_metrics_listen == "127.0.0.1:9312"
    assert GatewaySettings().metrics_listen == ""  # its /metrics is on its HTTP port


def test_bay_up_gives_each_process_its_port_and_lists_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAY_SIM_CLUSTER", "sim")
    monkeypatch.setenv("BAY_DEPLOYER_METRICS_LISTEN", "127.0.0.1:25001")
    monkeypatch.setenv("BAY_AUTOSCALER_METRICS_LISTEN", "")  # off
    stack = StackSettings()
    env = {svc.name: _metrics_env(stack, svc) for svc in services_for(stack)}
    assert env["deployer"] == {"BAY_METRICS_LISTEN": "127.0.0.1:25001"}
    assert env["scheduler-sim"] == {"BAY_METRICS_LISTEN": "127.0.0.1:9312"}
    assert env["autoscaler"] == {} and env["audit"] == {} and env["gateway"] == {}
    assert stack.child_environment({})["BAY_METRICS_LISTEN"] == ""  # what a process not told gets
    targets = json.loads(stack.child_environment({})["BAY_METRICS_TARGETS"])
    assert GatewaySettings(metrics_targets=targets).metrics_targets  # the gateway takes them as they are
    by_address = {t["address"]: t["labels"] for t in targets}
    assert by_address == {
        "127.0.0.1:8080": {"bay_service": "gateway"},
        "127.0.0.1:9310": {"bay_service": "registry"},
        "127.0.0.1:9311": {"bay_service": "scheduler", "cluster": "local"},
        "127.0.0.1:9312": {"bay_service": "scheduler", "cluster": "sim"},
        "127.0.0.1:9315": {"bay_service": "dns"},
        "127.0.0.1:25001": {"bay_service": "deployer"},
    }


def test_bad_metrics_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAY_METRICS_LISTEN", "nowhere")
    with pytest.raises(ValidationError, match="metrics_listen"):
        RegistrySettings()
    monkeypatch.delenv("BAY_METRICS_LISTEN")
    monkeypatch.setenv("BAY_DNS_METRICS_LISTEN", "[::1:9315")
    with pytest.raises(ValidationError, match="dns_metrics_listen"):
        StackSettings()
    monkeypatch.setenv("BAY_METRICS_TARGETS", '[{"address": "registry", "labels": {}}]')
    with pytest.raises(ValidationError, match="metrics_targets"):
        GatewaySettings()
    monkeypatch.setenv("BAY_METRICS_TARGETS", '[{"address": "registry:9310", "labels": {"__x": "y"}}]')
    with pytest.raises(ValidationError, match="label name"):
        GatewaySettings()


def test_compose_keeps_metrics_inside_its_network_and_lists_every_process() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    listened = {}
    for name, svc in compose.items():
        listen = (svc.get("environment") or {}).get("BAY_METRICS_LISTEN")
        if listen:
            host, _, port = listen.rpartition(":")
            assert host == "0.0.0.0", name
            assert not any(str(p).endswith(f":{port}") for p in svc.get("ports", [])), f"{name} publishes it"
            listened[f"{name}:{port}"] = name
    assert set(listened.values()) == {"registry", "scheduler-mesos", "deployer", "autoscaler", "dns"}
    targets = json.loads(compose["gateway"]["environment"]["BAY_METRICS_TARGETS"])
    assert {t["address"] for t in targets} == {*listened, "gateway:8080"}
