"""A real three-node NATS cluster on this machine: three nats-server processes joined by routes,
JetStream on each, every node in its own store directory, each node stoppable and startable again
(same ports, same store), as a node of a production cluster fails and comes back."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import nats.js.errors

from libs.natsserver import free_port, nats_server_binary, server_config, wait_for_port
from tests.poll import poll_until

CLUSTER_NAME = "bay"


@dataclass
class Node:
    name: str
    port: int
    route_port: int
    home: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class NatsCluster:
    """``auth``: an authorization block (see :mod:`libs.natsusers`) every node includes;
    ``client_options``: what this harness's own connections add (their credentials)."""

    home: Path
    size: int = 3
    auth: Path | None = None
    client_options: dict[str, object] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i in range(1, self.size + 1):
            self.nodes.append(Node(f"n{i}", free_port(), free_port(), self.home / f"n{i}"))

    @property
    def url(self) -> str:
        """Every node, as ``BAY_NATS_URL`` takes them."""
        return ",".join(self.urls)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def _config(self, node: Node, conf: Path) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{n.route_port}" for n in self.nodes if n is not node)
        lines = (
            f'server_name: "{node.name}"\n'
            f'listen: "127.0.0.1:{node.port}"\n'
            f'jetstream {{ store_dir: "{node.home / "store"}" }}\n'
            f'cluster {{ name: "{CLUSTER_NAME}", listen: "127.0.0.1:{node.route_port}",\n'
            f"  routes: [{routes}] }}\n"
        )
        return server_config(conf, include=self.auth, extra=lines)

    def start(self, node: Node) -> None:
        node.home.mkdir(parents=True, exist_ok=True)
        conf = node.home / "nats.conf"
        conf.write_text(self._config(node, conf))
        with open(node.home / "nats.log", "ab") as log:
            node.proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(conf)], stdout=log, stderr=log, start_new_session=True
            )
        if not wait_for_port("127.0.0.1", node.port, 10):
            node.proc.kill()
            raise RuntimeError(f"nats node {node.name} did not listen on {node.port}")

    def kill(self, node: Node) -> None:
        """SIGKILL: the node goes as a crashed machine would, with no goodbye to its peers."""
        if node.proc is not None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(timeout=10)
            node.proc = None

    def start_all(self) -> None:
        for node in self.nodes:
            self.start(node)

    def stop_all(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                self.kill(node)

    async def _request(self, subject: str, connect_options: dict[str, object]) -> dict[str, object] | None:
        import json

        nc = await nats.connect(
            servers=self.urls,
            connect_timeout=1,
            max_reconnect_attempts=0,
            **{**self.client_options, **connect_options},  # type: ignore[arg-type]
        )
        try:
            reply = await nc.request(subject, b"", timeout=1)
            answer: dict[str, object] = json.loads(reply.data)
            return answer
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            return None
        finally:
            await nc.close()

    async def wait_jetstream(self, timeout: float = 30.0, **connect_options: object) -> None:
        """Until the cluster's JetStream has a meta leader and answers account requests."""

        async def ready() -> bool:
            answer = await self._request("$JS.API.INFO", connect_options)
            return answer is not None and "error" not in answer

        await poll_until(ready, "the cluster's JetStream to answer", timeout)

    async def stream_cluster(self, stream: str, **connect_options: object) -> dict[str, object]:
        """The stream's ``cluster`` part of its info: its leader and each replica's state."""
        answer = await self._request(f"$JS.API.STREAM.INFO.{stream}", connect_options)
        if answer is None or "error" in answer:
            return {}
        info = answer.get("cluster")
        return info if isinstance(info, dict) else {}

    async def leader(self, stream: str, timeout: float = 30.0, **connect_options: object) -> Node:
        """The node leading ``stream`` now (waits through an election)."""

        async def elected() -> str | None:
            leader = (await self.stream_cluster(stream, **connect_options)).get("leader")
            return leader if isinstance(leader, str) and leader else None

        name = await poll_until(elected, f"a leader for stream {stream}", timeout)
        return self.node(name)

    async def wait_caught_up(self, stream: str, timeout: float = 60.0, **connect_options: object) -> None:
        """Until the stream has a leader and every other replica is current (a node that came back
        has caught up with what it missed)."""

        async def current() -> bool:
            info = await self.stream_cluster(stream, **connect_options)
            replicas = info.get("replicas")
            if not info.get("leader") or not isinstance(replicas, list):
                return False
            return len(replicas) == self.size - 1 and all(
                isinstance(r, dict) and r.get("current") and not r.get("offline") for r in replicas
            )

        await poll_until(current, f"every replica of {stream} current", timeout)
