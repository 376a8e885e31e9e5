"""A lease in a NATS key-value bucket: one holder at a time for a name (e.g. a cluster's scheduler).

Two schedulers of one cluster would both launch for the same empty slots; the lease makes the second
one wait. The holder renews the key every ``ttl / 3`` seconds with a compare-and-set on its last
revision; the bucket's TTL removes a key nobody renews, so a holder that died (on any host) frees the
lease after ``ttl`` seconds. A holder on this host whose process is gone is taken over at once (the
usual case: a scheduler killed and restarted by its supervisor).

A renewal that fails is not yet a takeover: its answer may have been late or lost while the update
landed (a busy holder, a stalled connection), and the next compare-and-set then meets a revision that
its own write moved. So the holder reads the key back: its own value means the lease is still its own
(it carries on from that revision); no key means nobody holds it (it creates it again). Only another
holder's value, or no answer from NATS for longer than the TTL (the key may have expired and been
taken meanwhile), loses the lease: the holder is told through ``on_lost`` and must stop acting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from libs.natsconn import NatsConnection

log = logging.getLogger("bay.lease")

BUCKET = "bay_leases"  # + the TTL in ms: a bucket's TTL is fixed when it is made, one bucket per TTL


def bucket_name(ttl: float) -> str:
    return f"{BUCKET}_{round(ttl * 1000)}"


def bucket_config(ttl: float, replicas: int = 1) -> KeyValueConfig:
    """The lease bucket for ``ttl``, as the set-up creates it (services may not create streams)."""
    return KeyValueConfig(
        bucket=bucket_name(ttl), ttl=ttl, history=1, storage=StorageType.FILE, replicas=replicas
    )


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    instance: str
    since: float

    def alive_here(self) -> bool:
        """False only when the holder is on this host and its process is gone."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class Lease:
    def __init__(
        self,
        conn: NatsConnection,
        name: str,
        *,
        ttl: float = 10.0,
        on_lost: Callable[[str], None] = lambda why: None,
        replicas: int = 1,
    ) -> None:
        self.conn = conn
        self.replicas = replicas  # as many as the event stream: a lease must outlive a NATS node
        self.name = name
        self.ttl = ttl
        self.on_lost = on_lost
        self.me = Holder(socket.gethostname(), os.getpid(), uuid.uuid4().hex, time.time())
        self._kv: KeyValue | None = None
        self._revision = 0
        # every call is bounded well inside the TTL, so a late answer leaves time to ask again
        self._call_timeout = max(0.2, min(5.0, ttl / 4))
        self._renewer: asyncio.Task[None] | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            js = self.conn.client.jetstream(timeout=self._call_timeout)
            try:
                self._kv = await js.key_value(bucket_name(self.ttl))
            except nats.js.errors.BucketNotFoundError:  # the set-up makes it; a test may not have
                self._kv = await js.create_key_value(bucket_config(self.ttl, self.replicas))
        return self._kv

    def _value(self) -> bytes:
        return json.dumps(self.me.__dict__).encode()

    async def holder(self) -> Holder | None:
        kv = await self._bucket()
        try:
            entry = await kv.get(self.name)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return Holder(**json.loads(entry.value))

    async def acquire(self, stop: asyncio.Event | None = None, *, say_every: float = 10.0) -> bool:
        """Wait until this process holds the lease (False if ``stop`` was set first), then keep it."""
        said = 0.0
        while stop is None or not stop.is_set():
            try:
                if await self._try():
                    self._renewer = asyncio.create_task(self._renew(), name=f"lease-{self.name}")
                    log.info("lease %s held (instance %s)", self.name, self.me.instance[:8])
                    return True
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                log.warning("lease %s: NATS did not answer (%s); retrying", self.name, exc)
            if time.monotonic() - said > say_every:
                said = time.monotonic()
                other = await self._holder_quietly()
                where = f"{other.host} pid {other.pid} since {time.ctime(other.since)}" if other else "?"
                log.warning("lease %s is held by %s; waiting (up to %.0fs after it stops renewing)",
                            self.name, where, self.ttl)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait() if stop else asyncio.Event().wait(), min(1.0, self.ttl / 3)
                )
        return False

    async def _holder_quietly(self) -> Holder | None:
        with contextlib.suppress(Exception):
            return await self.holder()
        return None

    async def _try(self) -> bool:
        kv = await self._bucket()
        try:
            self._revision = await kv.create(self.name, self._value())
            return True
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        try:
            entry = await kv.get(self.name)
        except nats.js.errors.KeyNotFoundError:
            return False  # expired between the two calls: the next try creates it
        other = Holder(**json.loads(entry.value)) if entry.value else None
        if other is not None and other.instance == self.me.instance:
            self._revision = entry.revision or 0
            return True
        if other is None or not other.alive_here():
            try:
                self._revision = await kv.update(self.name, self._value(), last=entry.revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                return False
            log.info(
                "lease %s taken over from %s pid %d (gone)",
                self.name,
                other and other.host,
                other and other.pid,
            )
            return True
        return False

    async def _renew(self) -> None:
        kv = await self._bucket()
        answered = time.monotonic()  # when the last call that NATS answered was sent
        pause = self.ttl / 3
        while True:
            await asyncio.sleep(pause)
            sent = time.monotonic()
            try:
                self._revision = await kv.update(self.name, self._value(), last=self._revision)
                answered, pause = sent, self.ttl / 3
                continue
            except nats.js.errors.KeyWrongLastSequenceError:
                why = "its revision moved"
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                why = f"no answer ({exc or type(exc).__name__})"
            try:
                lost = await self._still_mine(kv)
                answered = sent
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                if time.monotonic() - answered > self.ttl:
                    self.on_lost(f"lease {self.name} could not be renewed for {self.ttl:.0f}s ({exc})")
                    return
                pause = min(self.ttl / 3, self._call_timeout)  # soon: the TTL is running
                continue
            if lost:
                self.on_lost(f"lease {self.name} was taken over by another instance ({lost})")
                return
            log.info("lease %s: a renewal failed (%s) but the lease is still held", self.name, why)
            pause = 0.0  # renew at once from the revision just read

    async def _still_mine(self, kv: KeyValue) -> str:
        """After a failed renewal: '' if the lease is still this holder's (its revision taken up, or
        the key created again if it had gone), else who holds it now."""
        try:
            entry = await kv.get(self.name)
        except nats.js.errors.KeyNotFoundError:
            try:
                self._revision = await kv.create(self.name, self._value())
                return ""
            except nats.js.errors.KeyWrongLastSequenceError:
                entry = await kv.get(self.name)
        other = Holder(**json.loads(entry.value)) if entry.value else None
        if other is not None and other.instance == self.me.instance:
            self._revision = entry.revision or 0
            return ""
        return f"{other.host} pid {other.pid}" if other else "the key was cleared"

    async def release(self) -> None:
        """Stop renewing and delete the key (if still ours), so a successor need not wait."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        if self._kv is None or not self._revision:
            return
        with contextlib.suppress(Exception):
            current = await self.holder()
            if current is not None and current.instance == self.me.instance:
                await self._kv.delete(self.name, last=self._revision)
        self._revision = 0
