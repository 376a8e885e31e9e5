"""What every client of a Bay service shares: one channel, a deadline on every call, the caller's
metadata on every call, failed calls as the :class:`~libs.errors.BayError` they stand for, and the
standard gRPC health check.

A service that is down is :class:`~libs.errors.Unavailable` naming it and how to bring it back: at
once when its port refuses (gRPC fails a call fast unless ``wait_for_ready``), within the deadline
when it accepts but does not answer. Nothing here retries: whether a retry is safe is the caller's
call (a registry command is, with its idempotency key).
"""

from __future__ import annotations

import asyncio
import copy
import enum
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from bay.v1 import fold_pb2, fold_pb2_grpc
from google.protobuf import message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.clients._caller import Caller
from libs.errors import BayError, NotFound, Unavailable
from libs.grpcutil import channel, error_from_rpc

Q = TypeVar("Q", bound=message.Message)
R = TypeVar("R", bound=message.Message)

# gRPC's reconnect backoff grows to 120 s, which keeps a caller failing long after the service is
# back; capped, a service that comes back is reachable again within seconds.
RECONNECT_BACKOFF_MS = 2000


class Health(enum.Enum):
    """A service's answer to the standard health check (``grpc.health.v1``)."""

    SERVING = "serving"
    NOT_SERVING = "not_serving"
    UNKNOWN = "unknown"
    #: the server answers but does not know the service asked about
    SERVICE_UNKNOWN = "service_unknown"


_HEALTH = {
    health_pb2.HealthCheckResponse.SERVING: Health.SERVING,
    health_pb2.HealthCheckResponse.NOT_SERVING: Health.NOT_SERVING,
    health_pb2.HealthCheckResponse.SERVICE_UNKNOWN: Health.SERVICE_UNKNOWN,
}


class ServiceClient:
    """A Bay service at ``addr``. Subclasses add the service's stub and typed calls.

    ``what`` names the service in messages ("the DNS service"); ``hint`` says how to bring it back
    when it is down. ``health_service`` is the name its health check is asked about ("" is the
    server as a whole). :meth:`with_caller` gives the same client (same channel) for another caller.
    """

    what = "the service"
    health_service = ""

    def __init__(
        self,
        addr: str,
        *,
        timeout: float,
        caller: Caller | None = None,
        what: str | None = None,
        hint: str = "",
        health_service: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.addr = addr
        self.timeout = timeout
        self.caller = caller or Caller()
        if what is not None:
            self.what = what
        if health_service is not None:
            self.health_service = health_service
        self._hint = hint
        self.channel = channel(
            addr, options=[("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS), *options]
        )
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._fold = fold_pb2_grpc.FoldStatusStub(self.channel)

    # ---- how failures read ----

    def down_hint(self) -> str:
        return self._hint or f"check that {self.what} runs at {self.addr}"

    def late(self, seconds: float) -> Unavailable:
        return Unavailable(
            f"{self.what} ({self.addr}) did not answer within {seconds:g} s", hint=self.down_hint()
        )

    def unavailable(self, exc: grpc.aio.AioRpcError) -> Unavailable:
        """Down, or its own dependency (NATS) is."""
        return Unavailable(
            f"{self.what} ({self.addr}) is unavailable: {exc.details()}", hint=self.down_hint()
        )

    def translate(self, exc: grpc.aio.AioRpcError) -> BayError:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return self.late(self.timeout)
        if code == grpc.StatusCode.UNAVAILABLE:
            return self.unavailable(exc)
        return error_from_rpc(exc)

    # ---- calls ----

    def with_caller(self, caller: Caller) -> Self:
        """This client on behalf of ``caller`` (e.g. one HTTP request); it shares the channel, so
        close only the client that was opened."""
        twin = copy.copy(self)
        twin.caller = caller
        return twin

    async def call(self, rpc: grpc.aio.UnaryUnaryMultiCallable[Q, R], request: Q) -> R:
        """``await stub.Method(request)`` with the caller's metadata and the deadline."""
        try:
            return await rpc(request, metadata=self.caller.metadata(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self.translate(exc) from exc

    async def open_stream(
        self,
        rpc: grpc.aio.UnaryStreamMultiCallable[Q, R],
        request: Q,
        *,
        first_within: float,
        first_required: bool,
    ) -> AsyncIterator[R]:
        """A server stream's messages, once its first one came (or, unless ``first_required``, once
        ``first_within`` passed without an answer: a quiet log is not an error).

        A stream has no deadline (it may follow a log for hours), so its first answer is waited for
        here: an error before it is raised by this call (an HTTP route can still answer with a
        status), one after it ends the iterator with the BayError. Closing the iterator cancels the
        call.
        """
        call = rpc(request, metadata=self.caller.metadata())
        first: asyncio.Future[Any] = asyncio.ensure_future(call.read())
        try:
            done, _ = await asyncio.wait({first}, timeout=first_within)
        except asyncio.CancelledError:
            call.cancel()
            raise
        if done:
            try:
                first.result()
            except grpc.aio.AioRpcError as exc:
                raise self.translate(exc) from exc
        elif first_required:
            call.cancel()
            raise self.late(first_within)
        return self._rest(call, first)

    async def _rest(
        self, call: grpc.aio.UnaryStreamCall[Q, R], first: asyncio.Future[Any]
    ) -> AsyncIterator[R]:
        try:
            msg = await first
            while msg is not grpc.aio.EOF:
                yield msg
                msg = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise self.translate(exc) from exc
        finally:
            first.cancel()
            call.cancel()

    # ---- health ----

    async def health(self, timeout: float | None = None) -> Health:
        """The service's health-check answer; Unavailable when it does not answer at all."""
        seconds = self.timeout if timeout is None else timeout
        request = health_pb2.HealthCheckRequest(service=self.health_service)
        try:
            reply = await self._health.Check(request, timeout=seconds)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise self.late(seconds) from exc
            err = self.translate(exc)
            if isinstance(err, NotFound):  # the health servicer's answer for a service it does not know
                return Health.SERVICE_UNKNOWN
            raise err from exc
        return _HEALTH.get(reply.status, Health.UNKNOWN)

    async def serving(self, timeout: float | None = None) -> bool:
        """Whether the health check says SERVING within ``timeout``; any failure is a no."""
        try:
            return await self.health(timeout) == Health.SERVING
        except BayError:
            return False

    async def fold_status(self, timeout: float | None = None) -> fold_pb2.FoldStatusReply | None:
        """How far the service has folded the log and what it skipped; None when it does not say
        (down, late, or a service that folds nothing)."""
        seconds = self.timeout if timeout is None else timeout
        try:
            reply: fold_pb2.FoldStatusReply = await self._fold.Get(
                fold_pb2.FoldStatusRequest(), timeout=seconds
            )
        except grpc.aio.AioRpcError:
            return None
        return reply

    async def until_serving(self, *, poll_seconds: float = 0.1, attempt_timeout: float = 1.0) -> None:
        """Return once the health check says SERVING; the caller bounds the wait (``asyncio.timeout``).

        Polling is right here: before the service listens there is nothing to subscribe to.
        """
        while True:
            if await self.serving(attempt_timeout):
                return
            await asyncio.sleep(poll_seconds)

    # ---- lifetime ----

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
