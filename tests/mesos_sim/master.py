"""A Mesos master (v1 scheduler HTTP API) simulated in-process, faithful on the points of MESOS.md.

Why: no Mesos is installable any more, and the Mesos backend must be tested against something that
answers like the real master does (status codes, RecordIO, nested OFFERS, good-once offers, updates
re-sent until acknowledged, failover timeouts) so that what passes here would pass on a cluster.
Everything runs on the caller's asyncio loop; delays are loop timers (``call_later``), never sleeps.
Each agent also listens on its own port and serves ``/monitor/statistics`` and ``/files/read`` (over a
synthetic sandbox: a line per state change, plus what :meth:`MesosMasterSim.write_output` or the
optional script player of ``sandbox.py``, ``SimConfig.play_scripts``, writes) like a real agent.

``SimConfig(run_commands=True)``: the agents run command tasks as real processes (``executor.py``:
sandbox directories, fetched URIs, exits, kills, the agent's own health checks), each agent offering
ports of its own (``make_agents(own_ports=True)``, OWN_PORTS) since they all share this machine; the
offers' url says 127.0.0.1, which is where Bay's clients reach the tasks (``host_address``), while
hostnames stay names (agent-NNN.sim, for constraints) that do not resolve. Docker tasks are still
simulated. :meth:`MesosMasterSim.stop` ends every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.mesos_sim import httpserver
from tests.mesos_sim.executor import CommandExecutor
from tests.mesos_sim.httpserver import STREAMING, Request, Response, Streaming
from tests.mesos_sim.model import (
    Agent,
    AgentSpec,
    Framework,
    Json,
    Offer,
    Task,
    Usage,
    attributes_json,
    new_uuid_b64,
    parse_resources,
    ranges_of,
    resources_json,
)
from tests.mesos_sim.sandbox import FetchError, Sandbox, Step, fetch_uris, files_read, script

VERSION = "1.11.0"
OWN_PORTS = (20000, 30999)  # what make_agents(own_ports=True) shares out
MIB = 1024 * 1024


@dataclass
class SimConfig:
    """Timings of the simulated cluster (seconds). Real Mesos: heartbeat 15 s, update retry 10 s."""

    starting_delay: float = 0.0
    running_delay: float = 0.01
    kill_delay: float = 0.0
    health_delay: float = 0.02  # after RUNNING, when a task with a health check reports healthy
    send_starting: bool = True
    heartbeat_interval: float = 15.0
    update_retry_seconds: float = 10.0
    allocation_interval: float = 0.05
    default_refuse_seconds: float = 5.0
    min_offer_cpus: float = 0.01
    min_offer_mem: float = 32.0
    play_scripts: bool = False  # RUNNING shell tasks do what sandbox.script() makes of their command
    # Agents run the commands as real processes (executor.py); sandboxes under work_dir (None: a temp
    # dir of the simulator's, removed on stop)
    run_commands: bool = False
    work_dir: Path | None = None


def make_agents(
    n: int, *, cpus: float = 8.0, mem: float = 16384.0, zones: int = 3, own_ports: bool = False
) -> list[AgentSpec]:
    """n agents named agent-NNN.sim, spread over zones, with a TEXT zone/rack and a SCALAR gen attribute.

    ``own_ports``: each agent a port range of its own (agents that run real processes on this one
    machine must not hand out the same port twice), taken from OWN_PORTS, below the kernel's ephemeral
    ports and above the local cluster's 31000-31999; else every agent offers 31000-32000."""
    width = max(1, min(1000, (OWN_PORTS[1] - OWN_PORTS[0] + 1) // max(n, 1)))
    if own_ports and n * width > OWN_PORTS[1] - OWN_PORTS[0] + 1:
        raise ValueError(f"{n} agents with ports of their own do not fit in {OWN_PORTS}")
    return [
        AgentSpec(
            hostname=f"agent-{i:03d}.sim",
            cpus=cpus,
            mem=mem,
            attributes={"zone": f"zone-{i % zones}", "rack": f"rack-{i % 10}", "gen": 2.0},
            **(
                {"ports": ((OWN_PORTS[0] + i * width, OWN_PORTS[0] + (i + 1) * width - 1),)}
                if own_ports
                else {}
            ),
        )
        for i in range(n)
    ]


class _Stream:
    """One SUBSCRIBE connection: events are RecordIO records, batched per loop iteration into a chunk."""

    def __init__(self, stream_id: str, framework_id: str, req: Request) -> None:
        self.stream_id = stream_id
        self.framework_id = framework_id
        self.reader = req.reader
        self.writer = req.writer
        self.buffer: list[bytes] = []
        self.closed = False
        self.silent = False  # a half-open connection: nothing gets through, nothing says so
        self.heartbeat: asyncio.TimerHandle | None = None
        self.watcher: asyncio.Task[None] | None = None

    def send(self, event: Json) -> None:
        if self.closed or self.silent:
            return
        data = json.dumps(event, separators=(",", ":")).encode()
        if not self.buffer:
            asyncio.get_running_loop().call_soon(self.flush)
        self.buffer.append(b"%d\n%s" % (len(data), data))

    def flush(self) -> None:
        if self.closed or not self.buffer or self.writer.is_closing():
            self.buffer.clear()
            return
        body = b"".join(self.buffer)
        self.buffer.clear()
        self.writer.write(b"%x\r\n%s\r\n" % (len(body), body))

    def close(self, flush: bool = True) -> None:
        if self.closed:
            return
        if flush:
            self.flush()
        self.buffer.clear()  # a dropped connection loses what was not written yet
        self.closed = True
        if self.heartbeat:
            self.heartbeat.cancel()
        self.writer.close()


class MesosMasterSim:
    """The simulated master. ``await start()``, point a scheduler at :attr:`address`, ``await stop()``.

    Fault injection: :meth:`fail_task`, :meth:`finish_task`, :meth:`set_health`, :meth:`lose_agent`,
    :meth:`drop_subscription`, :meth:`fail_over_master`, :meth:`rescind_offer`, :meth:`add_agent`.
    Observation: :attr:`calls` (call types received), :attr:`heartbeats` (HEARTBEAT events sent),
    :meth:`wait_until`, :meth:`tasks_in_state`.
    """

    def __init__(self, agents: int | list[AgentSpec] = 3, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        own_ports = self.config.run_commands
        self._agent_specs = (
            make_agents(agents, own_ports=own_ports) if isinstance(agents, int) else list(agents)
        )
        self.master_id = str(uuid.uuid4())
        self.agents: dict[str, Agent] = {}
        self.frameworks: dict[str, Framework] = {}
        self.removed_frameworks: set[str] = set()
        self.offers: dict[str, Offer] = {}
        self.calls: Counter[str] = Counter()
        self.heartbeats = 0
        self.unhealthy: set[str] = set()  # task ids whose health checks fail
        self.sandboxes: dict[str, dict[tuple[str, str], Sandbox]] = {}  # agent id -> (fid, eid) -> files
        self.subscribe_error: tuple[int, str] | None = None  # answer SUBSCRIBE with this, if set
        self._streams: dict[str, _Stream] = {}
        self._agent_ports: dict[str, int] = {}
        self._servers: list[asyncio.Server] = []
        self._ports: list[int] = []
        self._leader: int | None = None
        self._ids = itertools.count(1)
        self._timers: list[asyncio.TimerHandle] = []
        self._alloc_soon = False
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.executor: CommandExecutor | None = None  # with run_commands: the real processes
        self._own_work_dir: Path | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Listen (the leading master on ``port``, 0: a free one; the standby on a free port)."""
        self._loop = asyncio.get_running_loop()
        for i in range(2):  # two masters: the leader and the one a failover elects
            server = await httpserver.start(self._handle, port=port if i == 0 else 0)
            self._servers.append(server)
            self._ports.append(server.sockets[0].getsockname()[1])
        self._leader = self._ports[0]
        if self.config.run_commands:
            root = self.config.work_dir
            if root is None:
                root = self._own_work_dir = Path(tempfile.mkdtemp(prefix="bay-mesos-sim-"))
            self.executor = CommandExecutor(
                root, self._executor_report, send_starting=self.config.send_starting
            )
        for spec in self._agent_specs:
            await self.add_agent(spec)
        self._every(self.config.allocation_interval, self._allocate)
        self._every(self.config.update_retry_seconds, self._resend_unacknowledged)

    async def stop(self) -> None:
        """Stops listening; every process the agents started is ended (SIGTERM, then SIGKILL)."""
        for handle in self._timers:
            handle.cancel()
        if self.executor is not None:
            await self.executor.stop()
        if self._own_work_dir is not None:
            shutil.rmtree(self._own_work_dir, ignore_errors=True)
        for stream in list(self._streams.values()):
            stream.close()
            if stream.watcher:
                stream.watcher.cancel()
        for fw in self.frameworks.values():
            if fw.failover_handle:
                fw.failover_handle.cancel()
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    @property
    def address(self) -> str:
        """host:port of the first master: what a scheduler is configured with."""
        return f"127.0.0.1:{self._ports[0]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def leader_address(self) -> str | None:
        return None if self._leader is None else f"127.0.0.1:{self._leader}"

    def agent_url(self, agent_id: str) -> str:
        """Base URL of an agent's own HTTP endpoint (``/monitor/statistics``)."""
        return f"http://127.0.0.1:{self._agent_ports[agent_id]}"

    # ---- observation -----------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checked whenever the simulator's state changes."""

        async def loop() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def tasks_in_state(self, state: str) -> list[Task]:
        return [t for fw in self.frameworks.values() for t in fw.tasks.values() if t.state == state]

    def framework(self) -> Framework:
        """The only framework (most tests have one)."""
        (fw,) = self.frameworks.values()
        return fw

    # ---- timers ----------------------------------------------------------------------------------------

    def _every(self, interval: float, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        loop = self._loop

        def tick() -> None:
            fn()
            self._timers.append(loop.call_later(interval, tick))
            if len(self._timers) > 64:
                self._timers = [h for h in self._timers if not h.cancelled()][-8:]

        self._timers.append(loop.call_later(interval, tick))

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> asyncio.TimerHandle:
        assert self._loop is not None

        def run() -> None:
            fn(*args)
            self._notify()

        return self._loop.call_later(delay, run)

    # ---- HTTP ------------------------------------------------------------------------------------------

    async def _handle(self, req: Request) -> Response | Streaming:
        try:
            return await self._route(req)
        finally:
            self._notify()

    async def _route(self, req: Request) -> Response | Streaming:
        if req.port not in self._ports:
            return self._agent_endpoint(req)
        if req.path == "/version" and req.method == "GET":
            if self._leader is None:
                return Response.text(503, "No leader elected")
            return Response.of_json(
                200, {"version": VERSION, "build_user": "bay-sim", "git_tag": VERSION, "build_time": 0}
            )
        if req.path in ("/master/slaves", "/slaves") and req.method == "GET":
            return Response.of_json(200, {"slaves": [self._agent_json(a) for a in self.agents.values()]})
        if req.path != "/api/v1/scheduler":
            return Response.text(404, "Not found")
        if req.method != "POST":
            return Response.text(405, "Expecting 'POST'")
        if self._leader is None:
            return Response.text(503, "No leader elected")
        if req.port != self._leader:
            return Response(307, headers={"Location": f"//127.0.0.1:{self._leader}/api/v1/scheduler"})
        if "application/json" not in req.headers.get("content-type", ""):
            return Response.text(415, "Expecting 'Content-Type' of application/json")
        try:
            call = req.json()
            kind = call["type"]
        except (ValueError, KeyError, TypeError):
            return Response.text(400, "Failed to parse body into Call")
        self.calls[kind] += 1
        if kind == "SUBSCRIBE":
            if self.subscribe_error is not None:
                return Response.text(*self.subscribe_error)
            return self._subscribe(req, call)
        stream_id = req.headers.get("mesos-stream-id")
        if not stream_id:
            return Response.text(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        fid = (call.get("framework_id") or {}).get("value")
        fw = self.frameworks.get(fid) if fid else None
        if fw is None or fw.stream_id is None:
            return Response.text(403, "Framework cannot be found")
        if stream_id != fw.stream_id:
            return Response.text(400, f"The stream ID '{stream_id}' included in this request didn't match")
        body = call.get(kind.lower()) or {}
        try:
            self._dispatch(fw, kind, body)
        except (KeyError, TypeError, ValueError) as exc:
            return Response.text(400, f"Failed to validate scheduler::Call: {exc!r}")
        return Response(202)

    def _dispatch(self, fw: Framework, kind: str, body: Json) -> None:
        if kind == "ACCEPT":
            self._accept(fw, body)
        elif kind == "DECLINE":
            self._decline(fw, body)
        elif kind == "KILL":
            self._kill(fw, body["task_id"]["value"], body.get("kill_policy"))
        elif kind == "ACKNOWLEDGE":
            self._acknowledge(fw, body["task_id"]["value"], body["uuid"])
        elif kind == "RECONCILE":
            self._reconcile(fw, [t["task_id"]["value"] for t in body.get("tasks", [])])
        elif kind == "REVIVE":
            fw.suppressed = False
            fw.refused_until.clear()
            self._allocate_soon()
        elif kind == "SUPPRESS":
            fw.suppressed = True
        elif kind == "TEARDOWN":
            self._remove_framework(fw)
        # MESSAGE, REQUEST, SHUTDOWN, ACCEPT_INVERSE_OFFERS...: accepted, nothing to simulate.

    # ---- subscription ----------------------------------------------------------------------------------

    def _subscribe(self, req: Request, call: Json) -> Response | Streaming:
        if "mesos-stream-id" in req.headers:
            return Response.text(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
        info = (call.get("subscribe") or {}).get("framework_info")
        if not isinstance(info, dict) or "user" not in info or "name" not in info:
            return Response.text(400, "Expecting 'subscribe.framework_info' with 'user' and 'name'")
        fid = (info.get("id") or {}).get("value")
        call_fid = (call.get("framework_id") or {}).get("value")
        if call_fid != fid:
            return Response.text(400, "'framework_id' differs from 'subscribe.framework_info.id'")
        stream_id = str(uuid.uuid4())
        req.writer.write(
            httpserver.head(
                200,
                {
                    "Content-Type": "application/json",
                    "Transfer-Encoding": "chunked",
                    "Mesos-Stream-Id": stream_id,
                },
            )
        )
        if fid in self.removed_frameworks:
            stream = _Stream(stream_id, fid, req)
            stream.send({"type": "ERROR", "error": {"message": "Framework has been removed"}})
            stream.close()
            return STREAMING
        fw = self.frameworks.get(fid) if fid else None
        if fw is None:
            fid = fid or f"{self.master_id}-{next(self._ids):04d}"
            caps = {c.get("type") for c in info.get("capabilities", [])}
            fw = Framework(
                framework_id=fid,
                info=info,
                failover_timeout=float(info.get("failover_timeout", 0.0)),
                partition_aware="PARTITION_AWARE" in caps,
            )
            self.frameworks[fid] = fw
        else:
            fw.info = info
            fw.failover_timeout = float(info.get("failover_timeout", fw.failover_timeout))
            if fw.failover_handle:
                fw.failover_handle.cancel()
                fw.failover_handle = None
            old = self._streams.pop(fw.framework_id, None)
            if old:  # another scheduler took over: the old one is told so
                old.send({"type": "ERROR", "error": {"message": "Framework failed over"}})
                old.close()
            self._recover_offers(fw, rescind=False)  # offers made to the old subscription are void
        # The subscription says which roles stay suppressed (none: offers flow again), as in Mesos 1.9+.
        fw.suppressed = bool((call.get("subscribe") or {}).get("suppressed_roles"))
        fw.stream_id = stream_id
        stream = _Stream(stream_id, fw.framework_id, req)
        self._streams[fw.framework_id] = stream
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": fw.framework_id},
                    "heartbeat_interval_seconds": self.config.heartbeat_interval,
                    "master_info": {
                        "id": self.master_id,
                        "ip": 16777343,
                        "port": self._leader,
                        "hostname": "127.0.0.1",
                        "version": VERSION,
                    },
                },
            }
        )
        self._heartbeat(stream)
        stream.watcher = asyncio.ensure_future(self._watch(stream))
        for task_id in list(fw.pending):  # updates waiting for an ack are re-sent to the new stream
            self._send_head(fw, task_id)
        self._allocate_soon()
        return STREAMING

    def _heartbeat(self, stream: _Stream) -> None:
        if stream.closed or self._loop is None:
            return
        stream.heartbeat = self._loop.call_later(self.config.heartbeat_interval, self._beat, stream)

    def _beat(self, stream: _Stream) -> None:
        stream.send({"type": "HEARTBEAT"})
        self.heartbeats += 1
        self._notify()
        self._heartbeat(stream)

    async def _watch(self, stream: _Stream) -> None:
        """Notice the scheduler closing its end: that is a disconnection (failover timeout starts)."""
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while await stream.reader.read(65536):
                pass
        self._disconnected(stream)
        self._notify()

    def _disconnected(self, stream: _Stream) -> None:
        stream.close(flush=False)
        fw = self.frameworks.get(stream.framework_id)
        if fw is None or fw.stream_id != stream.stream_id:
            return
        fw.stream_id = None
        self._streams.pop(fw.framework_id, None)
        self._recover_offers(fw, rescind=False)
        fw.failover_handle = self._later(fw.failover_timeout, self._expire, fw.framework_id)

    def _expire(self, framework_id: str) -> None:
        fw = self.frameworks.get(framework_id)
        if fw is not None and fw.stream_id is None:
            self._remove_framework(fw)

    def _remove_framework(self, fw: Framework) -> None:
        """Teardown or failover timeout: the framework's tasks are killed, it cannot come back."""
        for task in fw.tasks.values():
            if self.executor is not None:
                self.executor.forget(fw.framework_id, task.task_id)
            if not task.terminal:
                task.state = "TASK_KILLED"
                self._release(task)
        fw.tasks.clear()
        fw.pending.clear()
        self._recover_offers(fw, rescind=False)
        stream = self._streams.pop(fw.framework_id, None)
        if stream:
            stream.close()
        del self.frameworks[fw.framework_id]
        self.removed_frameworks.add(fw.framework_id)
        self._allocate_soon()

    def _send(self, fw: Framework, event: Json) -> None:
        stream = self._streams.get(fw.framework_id)
        if stream is not None and stream.stream_id == fw.stream_id:
            stream.send(event)

    # ---- offers ----------------------------------------------------------------------------------------

    def _allocate_soon(self) -> None:
        if not self._alloc_soon and self._loop is not None:
            self._alloc_soon = True
            self._loop.call_soon(self._allocate)

    def _allocate(self) -> None:
        self._alloc_soon = False
        now = time.time()
        eligible = [f for f in self.frameworks.values() if f.stream_id and not f.suppressed]
        if not eligible:
            return
        batches: dict[str, list[Json]] = {}
        rotation = next(self._ids)
        for agent in self.agents.values():
            if agent.lost or agent.offer_id:
                continue
            free = agent.free
            if free.cpus < self.config.min_offer_cpus and free.mem < self.config.min_offer_mem:
                continue
            for i in range(len(eligible)):
                fw = eligible[(rotation + i) % len(eligible)]
                if fw.refused_until.get(agent.agent_id, 0.0) > now:
                    continue
                offer = Offer(
                    f"{self.master_id}-O{next(self._ids)}", fw.framework_id, agent.agent_id, free.copy()
                )
                self.offers[offer.offer_id] = offer
                agent.offer_id = offer.offer_id
                batches.setdefault(fw.framework_id, []).append(self._offer_json(offer, agent))
                break
        for fid, offers in batches.items():
            self._send(self.frameworks[fid], {"type": "OFFERS", "offers": {"offers": offers}})
        if batches:
            self._notify()

    def _offer_json(self, offer: Offer, agent: Agent) -> Json:
        return {
            "id": {"value": offer.offer_id},
            "framework_id": {"value": offer.framework_id},
            "agent_id": {"value": agent.agent_id},
            "hostname": agent.spec.hostname,
            "url": {
                "scheme": "http",
                "address": {
                    "hostname": agent.spec.hostname,
                    "ip": "127.0.0.1",
                    "port": self._agent_ports[agent.agent_id],
                },
                "path": "/slave(1)",
            },
            "resources": resources_json(offer.resources),
            "attributes": attributes_json(agent.spec.attributes),
        }

    def _take_offer(self, offer_id: str, fw: Framework) -> Offer | None:
        offer = self.offers.get(offer_id)
        if offer is None or offer.framework_id != fw.framework_id:
            return None
        del self.offers[offer_id]
        agent = self.agents[offer.agent_id]
        if agent.offer_id == offer_id:
            agent.offer_id = None
        return offer

    def _refuse(self, fw: Framework, agent_id: str, filters: Json | None) -> None:
        seconds = float((filters or {}).get("refuse_seconds", self.config.default_refuse_seconds))
        if seconds > 0:
            fw.refused_until[agent_id] = time.time() + seconds
            self._later(seconds, self._allocate_soon)

    def _recover_offers(self, fw: Framework, *, rescind: bool) -> None:
        for offer_id in [o.offer_id for o in self.offers.values() if o.framework_id == fw.framework_id]:
            self._take_offer(offer_id, fw)
            if rescind:
                self._send(fw, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer_id}}})

    def _decline(self, fw: Framework, body: Json) -> None:
        for oid in body.get("offer_ids", []):
            offer = self._take_offer(oid["value"], fw)
            if offer is not None:
                self._refuse(fw, offer.agent_id, body.get("filters"))
        self._allocate_soon()

    # ---- launching -------------------------------------------------------------------------------------

    def _accept(self, fw: Framework, body: Json) -> None:
        offer_ids = [o["value"] for o in body.get("offer_ids", [])]
        offers = [self._take_offer(oid, fw) for oid in offer_ids]
        taken = [o for o in offers if o is not None]
        task_infos = [
            ti
            for op in body.get("operations", [])
            if op.get("type") == "LAUNCH"
            for ti in (op.get("launch") or {}).get("task_infos", [])
        ]
        invalid = ""
        if not offer_ids:
            invalid = "No offers given"
        elif len(taken) != len(offers):
            bad = [oid for oid, o in zip(offer_ids, offers, strict=True) if o is None]
            invalid = f"Offer {bad[0]} is no longer valid"
        elif len({o.agent_id for o in taken}) != 1:
            invalid = "Aggregated offers must belong to one single agent"
        if invalid:
            for ti in task_infos:
                self._master_update(
                    fw,
                    ti,
                    self._lost_state(fw),
                    "REASON_INVALID_OFFERS",
                    f"Task launched with invalid offers: {invalid}",
                )
            for o in taken:
                self._refuse(fw, o.agent_id, None)
            self._allocate_soon()
            return
        agent = self.agents[taken[0].agent_id]
        pool = Usage()
        for o in taken:
            pool.give(o.resources)
        launched: list[str] = []
        now = time.time()
        for ti in task_infos:
            task_id = ti["task_id"]["value"]
            existing = fw.tasks.get(task_id)
            if existing is not None and not existing.terminal:
                self._master_update(fw, ti, "TASK_ERROR", "REASON_TASK_INVALID", "Task has duplicate ID")
                continue
            if (ti.get("agent_id") or {}).get("value") != agent.agent_id:
                self._master_update(
                    fw, ti, "TASK_ERROR", "REASON_TASK_INVALID", "Task uses a different agent"
                )
                continue
            try:
                used = parse_resources(ti.get("resources", []))
            except (KeyError, TypeError, ValueError) as exc:
                self._master_update(fw, ti, "TASK_ERROR", "REASON_TASK_INVALID", f"Bad resources: {exc!r}")
                continue
            if not used.fits_in(pool) or not used.fits_in(agent.free):
                self._master_update(
                    fw,
                    ti,
                    self._lost_state(fw),
                    "REASON_INVALID_OFFERS",
                    "Task uses more resources than offered",
                )
                continue
            pool.take(used)
            agent.free.take(used)
            task = Task(
                task_id, fw.framework_id, agent.agent_id, ti.get("name", task_id), used, ti, launched_at=now
            )
            fw.tasks[task_id] = task
            agent.tasks.add((fw.framework_id, task_id))
            launched.append(task_id)
            real = self._runs_for_real(ti)
            directory = real.sandbox_dir(agent.agent_id, fw.framework_id, task_id) if real else None
            sandbox = Sandbox(directory=directory)
            self.sandboxes.setdefault(agent.agent_id, {})[(fw.framework_id, task_id)] = sandbox
            sandbox.write(
                "stdout", f"Received SUBSCRIBED event\nReceived LAUNCH event\nStarting task {task_id}\n"
            )
            if real and directory is not None:
                launched.pop()  # its executor says how it goes (it fetches the URIs itself)
                real.launch(fw.framework_id, task_id, agent.agent_id, ti, directory)
                continue
            uris = (ti.get("command") or {}).get("uris") or []
            if uris:  # the agent's fetcher, before the executor starts the command
                try:
                    fetch_uris(uris, sandbox)
                except FetchError as exc:
                    launched.pop()
                    why = f"Failed to fetch all URIs for container '{task_id}': {exc}"
                    self._transition(fw, task, "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", why)
        self._refuse(fw, agent.agent_id, body.get("filters"))
        if launched:
            cfg = self.config
            if cfg.send_starting:
                self._later(cfg.starting_delay, self._advance, fw.framework_id, launched, "TASK_STARTING")
            self._later(cfg.running_delay, self._advance, fw.framework_id, launched, "TASK_RUNNING")
        self._allocate_soon()

    def _runs_for_real(self, ti: Json) -> CommandExecutor | None:
        """The executor, if this task's command is to run as a process (not a Docker one: no Docker here)."""
        container = ti.get("container") or {}
        if self.executor is None or not ti.get("command") or container.get("type") == "DOCKER":
            return None
        return self.executor

    def _executor_report(
        self, framework_id: str, task_id: str, state: str, reason: str, message: str, healthy: bool | None
    ) -> None:
        """A real task's executor says its task changed: a status update (acknowledged, re-sent)."""
        fw = self.frameworks.get(framework_id)
        task = fw.tasks.get(task_id) if fw else None
        if fw is None or task is None or task.terminal:
            return
        if state == "TASK_RUNNING" and task.running_at is None:
            task.running_at = time.time()
        self._transition(fw, task, state, reason, message, healthy)
        self._notify()

    def _lost_state(self, fw: Framework) -> str:
        return "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"

    def _master_update(self, fw: Framework, ti: Json, state: str, reason: str, message: str) -> None:
        """An update the master makes up itself: no uuid, so nothing to acknowledge."""
        status: Json = {
            "task_id": {"value": ti["task_id"]["value"]},
            "state": state,
            "source": "SOURCE_MASTER",
            "reason": reason,
            "message": message,
            "timestamp": time.time(),
        }
        if ti.get("agent_id"):
            status["agent_id"] = ti["agent_id"]
        self._send(fw, {"type": "UPDATE", "update": {"status": status}})

    def _advance(self, framework_id: str, task_ids: list[str], state: str) -> None:
        fw = self.frameworks.get(framework_id)
        if fw is None:
            return
        healthy_later: list[str] = []
        for task_id in task_ids:
            task = fw.tasks.get(task_id)
            if task is None or task.terminal or task.state == "TASK_RUNNING":
                continue
            if state == "TASK_RUNNING" and task.state == "TASK_STAGING" and self.config.send_starting:
                # timers of different delays may fire in one batch (uvloop): an agent still says
                # STARTING first
                self._transition(fw, task, "TASK_STARTING")
            if state == "TASK_RUNNING":
                task.running_at = time.time()
                if task.info.get("health_check"):
                    healthy_later.append(task_id)
            self._transition(fw, task, state)
            command = task.info.get("command") or {}
            if state == "TASK_RUNNING" and self.config.play_scripts and command.get("shell", True):
                box = self.sandboxes.get(task.agent_id, {}).get((fw.framework_id, task_id))
                steps = script(str(command.get("value", "")), box.files if box else None)
                self._run_script(fw.framework_id, task_id, steps)
        if healthy_later:
            self._later(self.config.health_delay, self._health_checked, framework_id, healthy_later)

    def _health_checked(self, framework_id: str, task_ids: list[str]) -> None:
        fw = self.frameworks.get(framework_id)
        for task_id in task_ids:
            if fw is not None and task_id in fw.tasks:
                self.set_health(task_id, task_id not in self.unhealthy, framework_id=framework_id)

    def _transition(
        self,
        fw: Framework,
        task: Task,
        state: str,
        reason: str = "",
        message: str = "",
        healthy: bool | None = None,
    ) -> None:
        """An executor-side state change: sent with a uuid and re-sent until acknowledged."""
        if task.terminal:
            return
        task.state = state
        if healthy is not None:
            task.healthy = healthy
        self._executor_says(task, state, message, healthy)
        status = self._status(task, "SOURCE_EXECUTOR", reason, message)
        status["uuid"] = new_uuid_b64()
        task.last_status = status
        if task.terminal:
            for handle in task.timers:
                handle.cancel()
            self._release(task)
            self._allocate_soon()
        queue = fw.pending.setdefault(task.task_id, deque())
        queue.append(status)
        if len(queue) == 1:
            self._send_head(fw, task.task_id)

    def _executor_says(self, task: Task, state: str, message: str, healthy: bool | None) -> None:
        """The command executor's line for a state change, in the sandbox's stdout."""
        sandbox = self.sandboxes.get(task.agent_id, {}).get((task.framework_id, task.task_id))
        if sandbox is None:
            return
        if healthy is not None:
            line = f"Received task health update, healthy: {str(healthy).lower()}"
        elif state == "TASK_RUNNING" and sandbox.directory is not None:
            return  # the executor wrote the pid it forked
        elif state == "TASK_RUNNING":
            line = f"Forked command at {10000 + hash(task.task_id) % 50000}"
        else:
            line = message or state
        sandbox.write("stdout", line + "\n")

    def _run_script(self, framework_id: str, task_id: str, steps: list[Step]) -> None:
        """Play the command's steps: output now, sleeps as timers, the exit as FINISHED or FAILED."""
        fw = self.frameworks.get(framework_id)
        task = fw.tasks.get(task_id) if fw else None
        if fw is None or task is None or task.terminal:
            return
        for index, step in enumerate(steps):
            if step.kind == "out":
                self.write_output(task_id, step.text, step.stream, framework_id=framework_id)
            elif step.kind == "sleep":
                rest = steps[index + 1 :]
                task.timers.append(self._later(step.seconds, self._run_script, framework_id, task_id, rest))
                return
            elif step.kind == "exit":
                if step.code == 0:
                    self._transition(fw, task, "TASK_FINISHED", message="Command exited with status 0")
                else:
                    message = f"Command exited with status {step.code}"
                    self._transition(fw, task, "TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", message)
                return
            else:
                return  # runs until killed

    def _status(self, task: Task, source: str, reason: str = "", message: str = "") -> Json:
        status: Json = {
            "task_id": {"value": task.task_id},
            "state": task.state,
            "source": source,
            "agent_id": {"value": task.agent_id},
            "executor_id": {"value": task.task_id},
            "timestamp": time.time(),
        }
        if reason:
            status["reason"] = reason
        if message:
            status["message"] = message
        if task.healthy is not None:
            status["healthy"] = task.healthy
        return status

    def _send_head(self, fw: Framework, task_id: str) -> None:
        queue = fw.pending.get(task_id)
        if queue:
            fw.sent_at[task_id] = time.time()
            self._send(fw, {"type": "UPDATE", "update": {"status": queue[0]}})

    def _resend_unacknowledged(self) -> None:
        cutoff = time.time() - self.config.update_retry_seconds
        for fw in self.frameworks.values():
            if fw.stream_id:
                for task_id in [t for t, at in fw.sent_at.items() if at <= cutoff and t in fw.pending]:
                    self._send_head(fw, task_id)

    def _acknowledge(self, fw: Framework, task_id: str, status_uuid: str) -> None:
        queue = fw.pending.get(task_id)
        if not queue or queue[0].get("uuid") != status_uuid:
            return  # a stale or unknown ack: the agent drops it
        queue.popleft()
        if queue:
            self._send_head(fw, task_id)
            return
        del fw.pending[task_id]
        fw.sent_at.pop(task_id, None)
        task = fw.tasks.get(task_id)
        if task is not None and task.terminal:
            del fw.tasks[task_id]  # acknowledged terminal tasks are forgotten, as by the master

    def _release(self, task: Task) -> None:
        agent = self.agents.get(task.agent_id)
        if agent is not None and (task.framework_id, task.task_id) in agent.tasks:
            agent.tasks.discard((task.framework_id, task.task_id))
            if not agent.lost:
                agent.free.give(task.used)

    # ---- kill, reconcile -------------------------------------------------------------------------------

    def _kill(self, fw: Framework, task_id: str, policy: Json | None = None) -> None:
        task = fw.tasks.get(task_id)
        if task is None:
            self._reconcile(fw, [task_id])  # what the master does for an unknown task
            return
        if task.terminal:
            return
        if self.executor is not None and self.executor.knows(fw.framework_id, task_id):
            self.executor.kill(fw.framework_id, task_id, policy)
            return
        if task.state == "TASK_STAGING":
            self._transition(fw, task, "TASK_KILLED", "REASON_TASK_KILLED_DURING_LAUNCH")
            return
        self._later(self.config.kill_delay, self._killed, fw.framework_id, task_id)

    def _killed(self, framework_id: str, task_id: str) -> None:
        fw = self.frameworks.get(framework_id)
        task = fw.tasks.get(task_id) if fw else None
        if fw is not None and task is not None:
            self._transition(fw, task, "TASK_KILLED", message="Command terminated with signal Terminated")

    def _reconcile(self, fw: Framework, task_ids: list[str]) -> None:
        tasks: Iterable[Task | str] = list(fw.tasks.values()) if not task_ids else task_ids
        for item in tasks:
            task = fw.tasks.get(item) if isinstance(item, str) else item
            if task is None:
                assert isinstance(item, str)
                state = "TASK_UNKNOWN" if fw.partition_aware else "TASK_LOST"
                status: Json = {
                    "task_id": {"value": item},
                    "state": state,
                    "source": "SOURCE_MASTER",
                    "reason": "REASON_RECONCILIATION",
                    "message": "Reconciliation: Task is unknown",
                    "timestamp": time.time(),
                }
            else:
                status = self._status(
                    task, "SOURCE_MASTER", "REASON_RECONCILIATION", "Reconciliation: Latest task state"
                )
            self._send(fw, {"type": "UPDATE", "update": {"status": status}})

    # ---- agents ----------------------------------------------------------------------------------------

    async def add_agent(self, spec: AgentSpec) -> str:
        """Register an agent (it listens on its own port for /monitor/statistics); returns its id."""
        agent_id = f"{self.master_id}-S{len(self.agents)}"
        ports: set[int] = set()
        for begin, end in spec.ports:
            ports.update(range(begin, end + 1))
        self.agents[agent_id] = Agent(agent_id, spec, Usage(spec.cpus, spec.mem, spec.disk, ports))
        server = await httpserver.start(self._handle)
        self._servers.append(server)
        self._agent_ports[agent_id] = server.sockets[0].getsockname()[1]
        self._allocate_soon()
        return agent_id

    def agent_by_hostname(self, hostname: str) -> Agent:
        return next(a for a in self.agents.values() if a.spec.hostname == hostname)

    def _agent_json(self, agent: Agent) -> Json:
        port = self._agent_ports[agent.agent_id]
        spec = agent.spec
        return {
            "id": agent.agent_id,
            "hostname": spec.hostname,
            "port": port,
            "pid": f"slave(1)@127.0.0.1:{port}",
            "active": not agent.lost,
            "resources": {"cpus": spec.cpus, "mem": spec.mem, "disk": spec.disk},
            "attributes": dict(spec.attributes),
        }

    def _agent_endpoint(self, req: Request) -> Response:
        agent_id = next((a for a, p in self._agent_ports.items() if p == req.port), None)
        if agent_id is None or self.agents[agent_id].lost:
            return Response.text(503, "Agent is gone")
        if req.method == "GET" and req.path in ("/files/read", "/files/read.json"):
            return files_read(self.sandboxes.get(agent_id, {}), req.query)
        if req.method != "GET" or req.path not in ("/monitor/statistics", "/monitor/statistics.json"):
            return Response.text(404, "Not found")
        now = time.time()
        out: list[Json] = []
        for fid, task_id in sorted(self.agents[agent_id].tasks):
            task = self.frameworks[fid].tasks.get(task_id) if fid in self.frameworks else None
            if task is None or task.state != "TASK_RUNNING" or task.running_at is None:
                continue
            elapsed = max(now - task.running_at, 0.0)
            cpus = task.used.cpus
            out.append(
                {
                    "executor_id": task_id,
                    "executor_name": f"Command Executor (Task: {task_id})",
                    "framework_id": fid,
                    "source": task_id,
                    "statistics": {
                        "cpus_user_time_secs": round(elapsed * cpus * 0.25, 6),
                        "cpus_system_time_secs": round(elapsed * cpus * 0.05, 6),
                        "cpus_limit": round(cpus + 0.1, 6),
                        "mem_rss_bytes": int(task.used.mem * MIB * 0.4) + 8 * MIB,
                        "mem_limit_bytes": int((task.used.mem + 32) * MIB),
                        "timestamp": now,
                    },
                }
            )
        return Response.of_json(200, out)

    # ---- fault injection -------------------------------------------------------------------------------

    def _find(self, task_id: str, framework_id: str | None) -> tuple[Framework, Task]:
        for fw in self.frameworks.values():
            if framework_id in (None, fw.framework_id) and task_id in fw.tasks:
                return fw, fw.tasks[task_id]
        raise KeyError(task_id)

    def fail_task(
        self, task_id: str, message: str = "Command exited with status 1", framework_id: str | None = None
    ) -> None:
        fw, task = self._find(task_id, framework_id)
        self._transition(fw, task, "TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", message)
        self._notify()

    def finish_task(self, task_id: str, framework_id: str | None = None) -> None:
        fw, task = self._find(task_id, framework_id)
        self._transition(fw, task, "TASK_FINISHED", message="Command exited with status 0")
        self._notify()

    def set_health(self, task_id: str, healthy: bool, framework_id: str | None = None) -> None:
        """A health check result changed: a TASK_RUNNING update with ``healthy`` set."""
        fw, task = self._find(task_id, framework_id)
        if task.state == "TASK_RUNNING":
            self._transition(
                fw, task, "TASK_RUNNING", "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED", healthy=healthy
            )
        self._notify()

    def lose_agent(self, agent_id: str) -> None:
        """The agent disappears: offers rescinded, tasks LOST (UNREACHABLE if partition-aware), FAILURE."""
        agent = self.agents[agent_id]
        agent.lost = True
        if agent.offer_id and agent.offer_id in self.offers:
            offer = self.offers[agent.offer_id]
            fw = self.frameworks.get(offer.framework_id)
            if fw is not None:
                self._take_offer(offer.offer_id, fw)
                self._send(fw, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer.offer_id}}})
        for fid, task_id in sorted(agent.tasks):
            if self.executor is not None:
                self.executor.forget(fid, task_id)  # the agent and its processes are gone
            fw = self.frameworks.get(fid)
            task = fw.tasks.pop(task_id, None) if fw else None
            if fw is None or task is None:
                continue
            fw.pending.pop(task_id, None)
            fw.sent_at.pop(task_id, None)
            task.state = "TASK_UNREACHABLE" if fw.partition_aware else "TASK_LOST"
            reason = "REASON_AGENT_UNREACHABLE" if fw.partition_aware else "REASON_AGENT_REMOVED"
            status = self._status(task, "SOURCE_MASTER", reason, f"Agent {agent.spec.hostname} removed")
            self._send(fw, {"type": "UPDATE", "update": {"status": status}})
        agent.tasks.clear()
        for fw in self.frameworks.values():
            self._send(fw, {"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
        self._notify()

    def write_output(
        self, task_id: str, text: str, stream: str = "stdout", framework_id: str | None = None
    ) -> None:
        """Append to a task's sandbox stdout or stderr, as if the task printed it."""
        fw, task = self._find(task_id, framework_id)
        self.sandboxes[task.agent_id][(fw.framework_id, task_id)].write(stream, text)

    def sandbox_of(self, task_id: str, framework_id: str | None = None) -> Sandbox:
        """A task's sandbox: its output and the files the fetcher put there."""
        fw, task = self._find(task_id, framework_id)
        return self.sandboxes[task.agent_id][(fw.framework_id, task_id)]

    def refuse_subscriptions(self, status: int = 401, message: str = "Unauthorized") -> None:
        """Answer every SUBSCRIBE with ``status`` (e.g. authentication turned on) until accepted again."""
        self.subscribe_error = (status, message)

    def accept_subscriptions(self) -> None:
        self.subscribe_error = None

    def remove_framework(self, framework_id: str | None = None) -> None:
        """As when the failover timeout runs out: tasks killed, the framework id can never come back."""
        for fw in list(self.frameworks.values()):
            if framework_id in (None, fw.framework_id):
                self._remove_framework(fw)
        self._notify()

    def rescind_offer(self, offer_id: str) -> None:
        offer = self.offers[offer_id]
        fw = self.frameworks[offer.framework_id]
        self._take_offer(offer_id, fw)
        self._send(fw, {"type": "RESCIND", "rescind": {"offer_id": {"value": offer_id}}})
        self._allocate_soon()
        self._notify()

    def silence_subscription(self, framework_id: str | None = None) -> None:
        """The stream stays open but nothing reaches the scheduler any more (no heartbeats either),
        as with a network partition that no RST ends."""
        for fid, stream in self._streams.items():
            if framework_id in (None, fid):
                stream.silent = True
        self._notify()

    def drop_subscription(self, framework_id: str | None = None) -> None:
        """Close the subscription stream(s) as a network failure would; the failover timeout starts."""
        for fid, stream in list(self._streams.items()):
            if framework_id in (None, fid):
                self._disconnected(stream)
        self._notify()

    def fail_over_master(self, no_leader_seconds: float = 0.1) -> None:
        """A leader change: streams closed, 503 for a moment, then the other master leads (307 here)."""
        assert self._loop is not None
        new_leader = self._ports[1] if self._leader == self._ports[0] else self._ports[0]
        self._leader = None
        self.drop_subscription()

        def elect() -> None:
            self._leader = new_leader

        self._later(no_leader_seconds, elect)

    def ports_of(self, task_id: str) -> list[Json]:
        _, task = self._find(task_id, None)
        return ranges_of(task.used.ports)
