"""docker-compose.yml, checked statically (no Docker engine here): the production shape holds together.

Every Bay container runs a module of this repo, nothing is published beyond 127.0.0.1, the three
NATS nodes form one JetStream cluster whose routes name each other, and the services are wired to
all of them with 3 stream replicas.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BAY_MODULES = {
    "registry": "services.registry",
    "gateway": "services.gateway",
    "audit": "services.gateway.audit",
    "dns": "services.dns",
}

SET_UP = {"nats-auth", "nats-setup", "prometheus-token"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def bay_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The containers built from this repository's Dockerfile."""
    return {name: svc for name, svc in services(compose).items() if "build" in svc}


def nats_nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in services(compose).items() if str(svc.get("image", "")).startswith("nats:")
    }


def env_of(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def command_of(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command", [])
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def host_bindings(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(host ip, host port) of each published port; an ip of "" means every interface."""
    return [(ip, port) for ip, port, _ in published_ports(svc)]


def published_ports(svc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, protocol) of each published port (protocol tcp unless it says udp)."""
    out = []
    for port in svc.get("ports", []):
        if isinstance(port, dict):
            ip, published = str(port.get("host_ip", "")), str(port.get("published", ""))
            out.append((ip, published, str(port.get("protocol", "tcp"))))
            continue
        spec, _, proto = str(port).partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0].strip("[]"), parts[1], proto or "tcp"))
        else:  # host:container, or a bare container port (a random host port on every interface)
            out.append(("", parts[0], proto or "tcp"))
    return out


def test_bay_services_run_modules_of_this_repo(compose: dict[str, Any]) -> None:
    bay = bay_services(compose)
    assert set(BAY_MODULES) <= set(bay), f"missing Bay services: {set(BAY_MODULES) - set(bay)}"
    for name, svc in bay.items():
        cmd = command_of(svc)
        if name in SET_UP:  # one-shot: `bay nats ...`, before and after the NATS nodes start; a token
            assert cmd[:3] == ["python", "-m", "services.cli"] and svc["restart"] == "no", name
            assert cmd[3] in ("nats", "token"), name
            continue
        assert cmd[:2] == ["python", "-m"] and len(cmd) == 3, f"{name}: command is {cmd}"
        module = cmd[2]
        if name in BAY_MODULES:
            assert module == BAY_MODULES[name], f"{name} runs {module}"
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{name}: no module {module} in this repo"
        if spec.submodule_search_locations is not None:  # a package: it needs a __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, (
                f"{name}: {module} has no __main__"
            )
        assert svc["build"]["context"] == "." if isinstance(svc["build"], dict) else svc["build"] == "."


def test_every_host_port_is_on_loopback_and_unique(compose: dict[str, Any]) -> None:
    seen: dict[tuple[str, str], str] = {}
    published = 0
    for name, svc in services(compose).items():
        for ip, port, proto in published_ports(svc):
            published += 1
            assert ip == "127.0.0.1", f"{name} publishes port {port} on {ip or 'every interface'}"
            assert port.isdigit(), f"{name}: host port {port!r} must be fixed"
            key = (port, proto)
            assert key not in seen, f"host port {port}/{proto} published by both {seen[key]} and {name}"
            seen[key] = name
    ports = {port for port, _ in seen}
    assert {"8080", "50051"} <= ports, "the gateway and the registry must be reachable from the host"
    assert published == len(seen)


def test_service_listen_settings_match_published_ports(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert env_of(svc["registry"])["BAY_REGISTRY_LISTEN"] == "0.0.0.0:50051"
    assert env_of(svc["gateway"])["BAY_GATEWAY_LISTEN"] == "0.0.0.0:8080"
    assert ("127.0.0.1", "50051") in host_bindings(svc["registry"])
    assert ("127.0.0.1", "8080") in host_bindings(svc["gateway"])
    for name, s in bay_services(compose).items():
        assert env_of(s)["BAY_REGISTRY_ADDR"] == "registry:50051", name
    # DNS answers on both protocols, and the gateway reaches its gRPC listing
    dns = env_of(svc["dns"])
    assert dns["BAY_DNS_LISTEN"] == "0.0.0.0:53" and dns["BAY_DNS_GRPC_LISTEN"] == "0.0.0.0:50071"
    assert sorted(published_ports(svc["dns"])) == [("127.0.0.1", "1053", "tcp"), ("127.0.0.1", "1053", "udp")]
    assert env_of(svc["gateway"])["BAY_DNS_ADDR"] == "dns:50071"


def parse_nats_conf(text: str) -> dict[str, Any]:
    """Enough of the NATS config format for these checks: names, JetStream, cluster routes."""
    text = re.sub(r"(^|\s)(#|//).*", "", text)  # comments (not the // of a URL)
    out: dict[str, Any] = {}
    if m := re.search(r"^\s*server_name\s*[:=]\s*\"?([\w.-]+)", text, re.M):
        out["server_name"] = m.group(1)
    if m := re.search(r"^\s*listen\s*[:=]\s*\"?([\w.]+):(\d+)", text, re.M):
        out["client_port"] = int(m.group(2))
    if m := re.search(r"jetstream\s*[:=]?\s*\{([^}]*)\}", text):
        store = re.search(r"store_dir\s*[:=]\s*\"?([^\s\"]+)", m.group(1))
        out["jetstream"] = {"store_dir": store.group(1) if store else None}
    elif re.search(r"jetstream\s*[:=]\s*(true|enabled)", text):
        out["jetstream"] = {"store_dir": None}
    if m := re.search(r"cluster\s*[:=]?\s*\{(.*)\}", text, re.S):
        block = m.group(1)
        name = re.search(r"name\s*[:=]\s*\"?([\w-]+)", block)
        listen = re.search(r"listen\s*[:=]\s*\"?[\w.]+:(\d+)", block)
        out["cluster"] = {
            "name": name.group(1) if name else None,
            "port": int(listen.group(1)) if listen else None,
            "routes": re.findall(r"nats-route://([\w.-]+):(\d+)", block),
        }
    return out


def node_config(name: str, svc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The node's parsed config file (from its bind mount) and its volume mounts' targets."""
    conf = None
    targets = []
    for vol in svc.get("volumes", []):
        source, target = str(vol).split(":")[:2]
        targets.append(target)
        if source.startswith("./deploy/nats/") and source.endswith(".conf"):
            conf = ROOT / source
    assert conf is not None and conf.is_file(), f"{name}: no config file under deploy/nats mounted"
    cfg_path = command_of(svc)[command_of(svc).index("--config") + 1]
    assert cfg_path in targets, f"{name}: --config {cfg_path} is not the mounted file"
    return parse_nats_conf(conf.read_text()), targets


def test_nats_is_a_three_node_jetstream_cluster(compose: dict[str, Any]) -> None:
    nodes = nats_nodes(compose)
    assert len(nodes) == 3, f"NATS nodes: {sorted(nodes)}"
    clusters = set()
    for name, svc in nodes.items():
        assert str(svc["image"]).startswith("nats:2.11"), svc["image"]
        cfg, mounts = node_config(name, svc)
        assert cfg.get("server_name") == name
        store = cfg.get("jetstream", {}).get("store_dir")
        assert store, f"{name}: JetStream is not enabled with a store_dir"
        assert any(
            store == m or store.startswith(m.rstrip("/") + "/") for m in mounts if not m.endswith(".conf")
        ), f"{name}: JetStream store {store} is not on a volume"
        cluster = cfg.get("cluster")
        assert cluster and cluster["routes"], f"{name}: no cluster routes"
        clusters.add(cluster["name"])
        routed = {host for host, _ in cluster["routes"]}
        assert set(nodes) - {name} <= routed, f"{name} routes to {routed}, not to every other node"
        assert routed <= set(nodes), f"{name} routes to unknown hosts {routed - set(nodes)}"
        assert {int(p) for _, p in cluster["routes"]} == {cluster["port"]}, f"{name}: route ports differ"
    assert len(clusters) == 1 and None not in clusters, f"the nodes name different clusters: {clusters}"


def test_bay_services_use_every_nats_node_with_three_replicas(compose: dict[str, Any]) -> None:
    nodes = nats_nodes(compose)
    ports = {name: node_config(name, svc)[0]["client_port"] for name, svc in nodes.items()}
    for name, svc in bay_services(compose).items():
        env = env_of(svc)
        assert env["BAY_STREAM_REPLICAS"] == "3", name
        urls = env["BAY_NATS_URL"].split(",")
        assert sorted(urls) == sorted(f"nats://{n}:{p}" for n, p in ports.items()), f"{name}: {urls}"
        deps = set(svc.get("depends_on", {}))
        if "nats-setup" in deps:  # which waits for every node
            deps |= set(services(compose)["nats-setup"]["depends_on"])
        if name != "nats-auth":  # the one that runs before them (it writes their users)
            assert set(nodes) <= deps, f"{name} does not depend on every NATS node"
        assert env["BAY_DATA_DIR"] and any(str(v).endswith(":" + env["BAY_DATA_DIR"]) for v in svc["volumes"])


def test_database_password_comes_from_the_environment(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert str(svc["postgres"]["image"]).startswith("postgres:16")
    pg_password = env_of(svc["postgres"])["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{BAY_POSTGRES_PASSWORD:-[^}]+\}", pg_password), pg_password
    for name, s in bay_services(compose).items():
        url = env_of(s)["BAY_DATABASE_URL"]
        assert url == f"postgresql://bay:{pg_password}@postgres:5432/bay", f"{name}: {url}"


def test_every_container_restarts_and_mesos_is_there(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name, s in svc.items():
        assert s.get("restart") == ("no" if name in SET_UP else "unless-stopped"), name
    assert {"zookeeper", "mesos-master", "mesos-agent"} <= set(svc)
    assert "zookeeper" in svc["mesos-master"]["environment"]["MESOS_ZK"]
    for name in ("registry", "gateway", "postgres", *nats_nodes(compose)):
        assert "healthcheck" in svc[name], f"{name} has no healthcheck"


def test_dockerfile_mirrors_the_makefile_protos_target() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "grpc_tools.protoc -Iprotos" in text and "--grpc_python_out" in text
    # reflection v1 too (libs.reflection imports it), under the name the Makefile gives it
    assert "-Igrpc_reflection_v1=protos/grpc/reflection/v1" in text
    assert "grpc_reflection_v1/reflection.proto" in text
    makefile = (ROOT / "Makefile").read_text()
    assert "REFLECTION_V1 := protos/grpc/reflection/v1/reflection.proto" in makefile
    assert "-Igrpc_reflection_v1=" in makefile
    assert "pip install" in text and ".pth" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ("pyproject.toml", "protos", "libs", "services"):
        assert needed not in ignored


def test_nats_runs_with_a_user_per_service(compose: dict[str, Any]) -> None:
    svc = services(compose)
    init = command_of(svc["nats-auth"])
    auth_conf = init[init.index("--auth-config") + 1]
    for name, node in nats_nodes(compose).items():
        _, mounts = node_config(name, node)
        conf = next(ROOT / str(v).split(":")[0] for v in node["volumes"] if str(v).endswith("nats.conf:ro"))
        include = re.search(r'^include "([^"]+)"', conf.read_text(), re.M)
        assert include, f"{name}: its config includes no authorization"
        assert "/etc/nats/" + include.group(1) in [m + "/auth.conf" for m in mounts], f"{name}: {include}"
        assert node["depends_on"]["nats-auth"]["condition"] == "service_completed_successfully"
    assert Path(auth_conf).name == "auth.conf"
    assert init[init.index("--cluster") + 1] == "mesos"  # the scheduler of the cluster below has a user
    for name, s in bay_services(compose).items():
        if name in SET_UP:
            continue
        seed = env_of(s)["BAY_NATS_NKEY_SEED"]
        assert seed == f"/var/lib/bay/nats-auth/services/{name}.nk", name
        assert s["depends_on"]["nats-setup"]["condition"] == "service_completed_successfully", name
    assert env_of(svc["nats-setup"])["BAY_NATS_NKEY_SEED"].endswith("/services/setup.nk")
