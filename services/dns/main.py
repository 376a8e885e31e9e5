"""The DNS process: ``python -m services.dns``.

It replays the event log into its fold, resolves the hosts it names, and only then opens its port, so
its first answer is already right. ``BAY_DNS_WORKERS=N`` starts N-1 more processes on the same port
(SO_REUSEPORT; the kernel spreads clients over them); each folds the log itself, and only the first
serves gRPC.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time

from bay.v1 import dns_pb2, dns_pb2_grpc

from libs.addresses import parse_host_port
from libs.auth import TokenStore
from libs.errors import Unavailable
from libs.eventlog import Projection
from libs.eventlog.jetstream import event_log_for, wait_for_stream
from libs.foldstatus import fold_status
from libs.grpcutil import make_server
from libs.metrics import PROCESS
from libs.natsconn import connect
from libs.runtime import run_service
from libs.telemetry import setup_telemetry
from services.dns import udpfast
from services.dns.forward import Forwarder, parse_networks, parse_upstreams
from services.dns.grpc_api import DnsServicer
from services.dns.hosts import HostBook, read_hosts_file
from services.dns.metrics import DnsMetrics
from services.dns.model import DnsState
from services.dns.responder import Responder
from services.dns.server import DnsServer, bind_sockets
from services.dns.settings import DnsSettings
from services.dns.zone import Zone, ZoneConfig

log = logging.getLogger("bay.dns")

SERVICE_NAME = dns_pb2.DESCRIPTOR.services_by_name["Dns"].full_name
HOSTS_SETTLE_SECONDS = 2.0


def zone_config(settings: DnsSettings) -> ZoneConfig:
    ns = settings.dns_ns_address
    if not ns:
        host, _ = parse_host_port(settings.dns_listen, field="BAY_DNS_LISTEN", allow_zero=True)
        ns = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return ZoneConfig(
        origin=settings.dns_zone, ttl=settings.dns_ttl, ns_addresses=(ns,), serial=int(time.time())
    )


def forwarder_for(settings: DnsSettings) -> Forwarder | None:
    upstreams = parse_upstreams(settings.dns_upstreams)
    if not upstreams:
        return None
    return Forwarder(
        upstreams,
        networks=parse_networks(settings.dns_recursion_networks),
        cache_size=settings.dns_forward_cache,
    )


def start_workers(settings: DnsSettings) -> list[subprocess.Popen[bytes]]:
    # the first process alone serves metrics (the others could not bind its port)
    env = {
        **os.environ,
        "BAY_DNS_WORKER": "1",
        "BAY_DNS_LISTEN": settings.dns_listen,
        "BAY_METRICS_LISTEN": "",
    }
    return [
        subprocess.Popen([sys.executable, "-m", "services.dns"], env=env)
        for _ in range(settings.dns_workers - 1)
    ]


async def serve(settings: DnsSettings, stop: asyncio.Event) -> None:
    role = "dns-worker" if settings.dns_worker else "dns"
    setup_telemetry(f"bay-{role}")
    fast_path = udpfast.load() if settings.dns_fast_path != "python" else None
    if fast_path is None and settings.dns_fast_path == "c":
        raise Unavailable("the C fast path is not built", hint="run `make setup`, or BAY_DNS_FAST_PATH=auto")
    conn = await connect(settings.nats_url, name=f"bay-{role}", credentials=settings.nats_credentials())
    event_log = event_log_for(conn, settings)
    await wait_for_stream(event_log)
    state = DnsState()
    static = read_hosts_file(settings.dns_hosts_file) if settings.dns_hosts_file else {}
    hosts = HostBook(static)
    zone = Zone(state, hosts, zone_config(settings))
    hosts.on_change = zone.clear
    state.on_change = zone.changed
    state.on_host = hosts.want
    projection = Projection(name=role, log=event_log, initial=lambda: state, apply=DnsState.fold)
    await projection.start()
    await hosts.settle(HOSTS_SETTLE_SECONDS)
    hosts.start()
    forwarder = forwarder_for(settings)
    responder = Responder(zone, forwarder=forwarder, udp_payload=settings.dns_udp_payload)
    DnsMetrics(responder, PROCESS.registry)
    reuse = settings.dns_workers > 1
    udp, tcp = bind_sockets(settings.dns_listen, reuse_port=reuse)
    server = DnsServer(
        responder,
        udp,
        tcp,
        tcp_clients=settings.dns_tcp_clients,
        tcp_idle_seconds=settings.dns_tcp_idle_seconds,
        fast_path=fast_path,
    )
    await server.start()
    grpc_server = None
    workers: list[subprocess.Popen[bytes]] = []
    if not settings.dns_worker:
        tokens = TokenStore(settings.resolved_tokens_file(), anonymous_read=settings.anonymous_read)
        grpc_server, _ = await make_server(
            settings.dns_grpc_listen,
            [
                (
                    dns_pb2_grpc.add_DnsServicer_to_server,
                    DnsServicer(responder, projection, tokens),
                    SERVICE_NAME,
                ),
                fold_status("dns", projection),
            ],
            nats=conn,
        )
        await grpc_server.start()
        workers = start_workers(settings) if reuse else []
        log.info(
            "answering for %s on %s (udp+tcp; %d process(es); %s UDP fast path), %d services, %d tasks, "
            "at sequence %d; gRPC on %s; upstreams: %s",
            zone.origin, settings.dns_listen, settings.dns_workers, "C" if fast_path else "Python",
            len(state.service_groups),
            len(state.tasks), projection.sequence, settings.dns_grpc_listen,
            settings.dns_upstreams or "none (outside names are refused)",
        )  # fmt: skip
    await stop.wait()
    for w in workers:
        w.terminate()
    await server.stop()
    if grpc_server is not None:
        await grpc_server.stop(grace=1)
    await projection.stop(snapshot=False)
    await hosts.stop()
    if forwarder is not None:
        await forwarder.close()
    await conn.close()
    for w in workers:
        try:
            w.wait(timeout=5)
        except subprocess.TimeoutExpired:
            w.kill()


def main() -> None:
    run_service("dns", DnsSettings, serve)


if __name__ == "__main__":
    main()
