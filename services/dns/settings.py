"""DNS settings (``BAY_DNS_*`` environment variables, plus the common ``BAY_*`` ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from libs import defaults
from libs.settings import CommonSettings
from services.dns.forward import parse_networks, parse_upstreams


class DnsSettings(CommonSettings):
    metrics_listen: str = Field(
        defaults.DNS_METRICS_ADDRESS, description='its Prometheus /metrics host:port ("": none)'
    )
    dns_listen: str = Field(defaults.DNS_ADDRESS, description="UDP+TCP address (53 needs privilege)")
    dns_grpc_listen: str = Field(
        defaults.DNS_GRPC_ADDRESS, description="the DNS service's gRPC (debug listing)"
    )
    dns_zone: str = Field("bay.internal.", description="the zone Bay answers for")
    dns_ttl: int = Field(5, ge=0, le=86_400, description="TTL of answers and of negative answers (seconds)")
    dns_upstreams: str = Field("", description="resolvers for outside names: 10.0.0.2,10.0.0.3:53")
    dns_recursion_networks: str = Field(
        "127.0.0.0/8,::1/128", description="clients whose outside names are forwarded (CIDRs)"
    )
    dns_hosts_file: Path | None = Field(None, description="Mesos agents' addresses (/etc/hosts form)")
    dns_ns_address: str = Field("", description="address of ns.<zone>; default: the listen address")
    dns_workers: int = Field(1, ge=1, le=64, description="processes sharing the port (SO_REUSEPORT)")
    dns_worker: bool = Field(False, description="set by the DNS service on the extra workers it starts")
    dns_fast_path: str = Field(
        "auto", pattern="^(auto|c|python)$", description="UDP fast path: auto (C if built), c or python"
    )
    dns_udp_payload: int = Field(1232, ge=512, le=4096, description="largest UDP reply (EDNS0)")
    dns_tcp_clients: int = Field(256, ge=1, description="TCP connections at once")
    dns_tcp_idle_seconds: float = Field(10.0, gt=0, description="an idle TCP connection is closed after this")
    dns_forward_cache: int = Field(10_000, ge=0, description="forwarded answers kept")
    anonymous_read: bool = Field(False, description="allow the gRPC listing without a token")

    @field_validator("dns_upstreams")
    @classmethod
    def _upstreams(cls, value: str) -> str:
        parse_upstreams(value)
        return value

    @field_validator("dns_recursion_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("dns_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from services.dns.wire import name_to_wire

        name_to_wire(value)
        return value.rstrip(".").lower() + "."
