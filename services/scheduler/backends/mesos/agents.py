"""The agents, as a framework reaches them: hostnames and HTTP endpoints, statistics, sandbox files.

Where an agent listens comes from its offers (``Offer.url``) and, for agents that made no offer to
this backend (full ones, after a scheduler restart), from the master's ``/master/slaves``, where each
agent's ``pid`` is ``slave(1)@<ip>:<port>``. On the agent, ``/monitor/statistics`` gives resource usage
per executor, and ``/files/read`` reads sandbox files through the virtual path the agent attaches for
each executor's latest run: ``/frameworks/<framework>/executors/<executor>/runs/latest``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from libs.addresses import parse_host_port
from libs.errors import NotFound, Unavailable, ValidationFailed

from . import http

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]
REFRESH_MIN_SECONDS = 2.0
READ_BLOCK = 32 * 1024  # below what one /files/read answers at most (16 pages)
FOLLOW_SECONDS = 0.5


@dataclass(frozen=True)
class AgentRef:
    agent_id: str
    hostname: str
    address: str  # ip:port of the agent's own HTTP endpoint; "" if unknown


def address_of_pid(pid: str) -> str:
    """``slave(1)@10.0.0.5:5051`` -> ``10.0.0.5:5051``."""
    return pid.partition("@")[2]


class Agents:
    """Agent id -> hostname and address, learnt from offers and refreshed from the master when one is
    missing; and the agents' endpoints, one keep-alive connection per agent. ``master`` says where the
    master is now (pymesos follows the leader)."""

    def __init__(self, timeout: float, master: Callable[[], str]) -> None:
        self.pool = http.Pool(timeout)
        self._master = master
        self._agents: dict[str, AgentRef] = {}
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0

    def learn(self, agent_id: str, hostname: str, address: str | None) -> None:
        known = self._agents.get(agent_id)
        if known is None or known.hostname != hostname or (address and known.address != address):
            self._agents[agent_id] = AgentRef(agent_id, hostname, address or (known.address if known else ""))

    def get(self, agent_id: str) -> AgentRef | None:
        return self._agents.get(agent_id)

    def host_address(self, agent_id: str, hostname: str) -> str:
        """The agent's IP from its url (``ip:port`` of the agent itself), else ``hostname``."""
        ref = self._agents.get(agent_id)
        if ref is None or not ref.address:
            return hostname
        try:
            ip = parse_host_port(ref.address, field="agent url")[0]
            ipaddress.ip_address(ip)
        except (ValueError, ValidationFailed):
            return hostname  # the url named a host, not an address
        return ip

    async def lookup(self, agent_id: str) -> AgentRef | None:
        """The agent, asking the master (at most every couple of seconds, once at a time) if unknown."""
        found = self._agents.get(agent_id)
        if found is not None and found.address:
            return found
        if self._refreshing is None:
            if time.monotonic() - self._refreshed_at < REFRESH_MIN_SECONDS:
                return found
            self._refreshing = asyncio.create_task(self._refresh(self._master()))
        await asyncio.shield(self._refreshing)
        return self._agents.get(agent_id)

    async def _refresh(self, master: str) -> None:
        try:
            answer = await self.pool.fetch(master, http.get(master, "/master/slaves"))
            if answer.status != 200:
                raise http.HttpError(f"answered {answer.status}")
            for slave in json.loads(answer.body).get("slaves", []):
                address = address_of_pid(str(slave.get("pid", "")))
                self.learn(str(slave["id"]), str(slave.get("hostname", "")), address)
        except (http.HttpError, ValueError, KeyError, AttributeError) as exc:
            log.warning("could not list the agents at the Mesos master %s: %s", master, exc)
        finally:
            self._refreshed_at = time.monotonic()
            self._refreshing = None

    async def statistics(self, agent: AgentRef) -> list[Json]:
        """The agent's ``/monitor/statistics``: one entry per executor, of every framework."""
        answer = await self.pool.fetch(agent.address, http.get(agent.address, "/monitor/statistics"))
        if answer.status != 200:
            raise http.HttpError(f"agent {agent.hostname} answered {answer.status}")
        entries = json.loads(answer.body)
        return entries if isinstance(entries, list) else []

    async def read_file(self, agent: AgentRef, path: str, offset: int, length: int = -1) -> Json:
        """``/files/read``: ``{"data", "offset"}``; offset -1 answers the size. NotFound / Unavailable."""
        params: dict[str, str | int] = {"path": path, "offset": offset}
        if length >= 0:
            params["length"] = length
        try:
            answer = await self.pool.fetch(agent.address, http.get(agent.address, "/files/read", params))
        except http.HttpError as exc:
            raise Unavailable(f"agent {agent.hostname} ({agent.address}) did not answer: {exc}") from exc
        if answer.status == 404:
            raise NotFound(f"no file {path} on agent {agent.hostname}", hint="the sandbox may be gone (gc)")
        if answer.status != 200:
            text = answer.body.decode("utf-8", "replace")[:200]
            raise Unavailable(f"agent {agent.hostname} answered {answer.status} for {path}: {text}")
        try:
            doc = json.loads(answer.body)
        except ValueError as exc:
            raise Unavailable(f"agent {agent.hostname} answered no JSON for {path}") from exc
        return doc if isinstance(doc, dict) else {"data": "", "offset": 0}

    async def tail_offset(self, agent: AgentRef, path: str, size: int, lines: int) -> int:
        """Where the last ``lines`` lines of the file start, reading backwards a block at a time."""
        if lines < 0 or size == 0:
            return 0
        if lines == 0:
            return size
        seen, pos, last = 0, size, True
        while pos > 0:
            start = max(0, pos - READ_BLOCK)
            chunk = str((await self.read_file(agent, path, start, pos - start)).get("data", "")).encode()
            if last and chunk.endswith(b"\n"):
                chunk = chunk[:-1]  # a final newline ends the last line; it does not start a new one
            last = False
            index = len(chunk)
            while (index := chunk.rfind(b"\n", 0, index)) >= 0:
                seen += 1
                if seen == lines:
                    return start + index + 1
            pos = start
        return 0

    async def read_log(
        self, agent: AgentRef, path: str, tail: int, follow: bool, ended: Callable[[], bool]
    ) -> AsyncIterator[bytes]:
        """The file's last ``tail`` lines, then (following) what is appended, until ``ended()`` and all
        is read. Sandbox output is taken to be UTF-8 text (``/files/read`` answers it as JSON text)."""
        size = int((await self.read_file(agent, path, -1)).get("offset", 0))
        offset = await self.tail_offset(agent, path, size, tail)
        while True:
            finished = ended()  # read before the last drain: nothing written after the end is missed
            while True:
                doc = await self.read_file(agent, path, offset, READ_BLOCK)
                data = str(doc.get("data", "")).encode()
                if not data:
                    break
                offset = int(doc.get("offset", offset)) + len(data)
                yield data
            if not follow or finished:
                return
            await asyncio.sleep(FOLLOW_SECONDS)

    async def last_line(self, agent: AgentRef, path: str, max_bytes: int = 4096) -> str:
        """The file's last non-empty line (at most 300 characters); "" when there is none."""
        size = int((await self.read_file(agent, path, -1)).get("offset", 0))
        start = max(0, size - max_bytes)
        data = str((await self.read_file(agent, path, start, size - start)).get("data", ""))
        lines = [line.strip() for line in data.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""

    async def close(self) -> None:
        await self.pool.close()
