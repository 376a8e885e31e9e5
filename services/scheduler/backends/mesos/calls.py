"""Scheduler calls (accept, decline, kill, acknowledge, ...) from the loop, pipelined on one connection.

pymesos sends each call synchronously on one connection under its lock, which costs a thread hop and
a full round trip per call: 10,000 acknowledgements for 5,000 launches would wait for each other. The
v1 API lets any connection carry calls as long as they name the subscription's ``Mesos-Stream-Id``, and
the master answers pipelined requests in order. So calls are written back to back on one keep-alive
connection of our own (``http.py``), and one connection keeps them in the order they were made (a
decline before a revive, an accept before a kill). The subscription itself stays with pymesos, which
reports the stream id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from . import http

log = logging.getLogger("bay.scheduler.mesos")

Json = dict[str, Any]
CALL_TIMEOUT = 10.0
PATH = "/api/v1/scheduler"


class NotSubscribed(Exception):
    """There is no subscription right now: the call was not sent."""


class CallFailed(Exception):
    """The master answered something other than 2xx, or did not answer."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class MasterCalls:
    """Calls for the current subscription (see :meth:`subscribed`)."""

    def __init__(self) -> None:
        self._master = ""
        self._framework_id = ""
        self._stream_id = ""
        self._pool = http.Pool(CALL_TIMEOUT)
        self._acks: set[asyncio.Future[http.Answer]] = set()  # acknowledgements not answered yet
        self.acknowledged = 0

    def subscribed(self, master: str, framework_id: str, stream_id: str) -> None:
        if master != self._master and self._master:
            self._pool.drop(self._master, "the master changed")
        self._master, self._framework_id, self._stream_id = master, framework_id, stream_id

    def unsubscribed(self) -> None:
        self._stream_id = ""

    @property
    def is_subscribed(self) -> bool:
        """Whether there is a subscription to make calls for (its stream id is known)."""
        return bool(self._stream_id and self._framework_id)

    async def send(self, kind: str, body: Json) -> bool:
        """One call, in order with the others; False if it could not be made (not subscribed, or the
        master refused it or did not answer: logged), for the callers that try again later."""
        try:
            await self.call(kind, body)
            return True
        except NotSubscribed:
            return False
        except CallFailed as exc:
            log.warning("Mesos %s call failed: %s", kind, exc)
            return False

    async def call(self, kind: str, body: Json | None = None) -> None:
        """Send one call and wait for its answer; NotSubscribed or CallFailed when it did not work."""
        data = self._request(kind, body)
        try:
            answer = await self._pool.fetch(self._master, data)
        except http.HttpError as exc:
            raise CallFailed(f"{kind}: {exc}") from exc
        self._check(kind, answer)

    def acknowledge(self, status: Json) -> None:
        """Acknowledge an update without waiting; a lost acknowledgement only costs a re-sent update."""
        body = {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}
        try:
            data = self._request("ACKNOWLEDGE", body)
        except NotSubscribed:
            return  # the master re-sends it to the next subscription
        answer = self._pool.send_nowait(self._master, data)  # the usual case: no task, no timer
        if answer is None:
            answer = asyncio.ensure_future(self._pool.fetch(self._master, data))
        self._acks.add(answer)
        answer.add_done_callback(self._acknowledged)

    def _acknowledged(self, answer: asyncio.Future[http.Answer]) -> None:
        self._acks.discard(answer)
        if answer.cancelled():
            return
        try:
            self._check("ACKNOWLEDGE", answer.result())
            self.acknowledged += 1
        except (CallFailed, http.HttpError) as exc:
            log.debug("an acknowledgement was not taken (%s); the master re-sends the update", exc)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the acknowledgements in flight."""
        if self._acks:
            await asyncio.wait(set(self._acks), timeout=timeout)

    async def close(self) -> None:
        for answer in list(self._acks):
            answer.cancel()
        await self._pool.close()

    def _request(self, kind: str, body: Json | None) -> bytes:
        if not self._stream_id or not self._framework_id:
            raise NotSubscribed(f"{kind}: not subscribed to a Mesos master")
        call: Json = {"type": kind, "framework_id": {"value": self._framework_id}}
        if body is not None:
            call[kind.lower()] = body
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Mesos-Stream-Id": self._stream_id,
        }
        return http.request(
            "POST", self._master, PATH, headers, json.dumps(call, separators=(",", ":")).encode()
        )

    @staticmethod
    def _check(kind: str, answer: http.Answer) -> None:
        if not 200 <= answer.status < 300:
            text = answer.body.decode("utf-8", "replace").strip()[:300]
            raise CallFailed(f"{kind}: the master answered {answer.status}: {text}", answer.status)
