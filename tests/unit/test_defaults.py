"""Each default address has one home (libs/defaults): a service and its callers agree on it."""

from __future__ import annotations

import os

import pytest

from libs import defaults
from services.cli.settings import CliSettings
from services.cli.stack.settings import StackSettings
from services.dns.settings import DnsSettings
from services.gateway.settings import GatewaySettings
from services.registry.settings import RegistrySettings
from services.scheduler.settings import SchedulerSettings


@pytest.fixture(autouse=True)
def no_bay_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("BAY_")]:
        monkeypatch.delenv(name)


def test_services_and_their_callers_agree() -> None:
    stack, gateway = StackSettings(), GatewaySettings()
    assert RegistrySettings().registry_listen == gateway.registry_addr == stack.registry_address
    assert stack.registry_address == defaults.REGISTRY_ADDRESS
    assert SchedulerSettings().scheduler_listen == gateway.schedulers["local"] == stack.schedulers["local"]
    assert stack.scheduler_address == defaults.SCHEDULER_ADDRESS
    dns = DnsSettings()
    assert dns.dns_grpc_listen == gateway.dns_addr == stack.dns_grpc_address == defaults.DNS_GRPC_ADDRESS
    assert dns.dns_listen == stack.dns_listen == defaults.DNS_ADDRESS
    assert gateway.gateway_listen == stack.gateway_listen == defaults.GATEWAY_ADDRESS
    assert CliSettings().gateway_url == stack.gateway_url == defaults.GATEWAY_URL
    assert gateway.nats_url == stack.effective_nats_url == defaults.NATS_URL


def test_a_bad_address_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("BAY_DNS_ADDR", "dns")
    with pytest.raises(ValidationError, match="dns_addr") as info:
        GatewaySettings()
    assert "host:port" in str(info.value)
    monkeypatch.setenv("BAY_REGISTRY_LISTEN", "[::1:50051")
    with pytest.raises(ValidationError, match="registry_listen"):
        StackSettings()
