"""The schedulers (one per cluster, ``BAY_SCHEDULERS``) as the gateway calls them over gRPC.

One channel per cluster, opened at start-up. Like the registry's, every call carries the caller's
``authorization`` and ``x-correlation-id`` and has a short deadline, and a failed call comes back as
the BayError it stands for. A scheduler that is down is :class:`~libs.errors.Unavailable` naming its
cluster (HTTP 503 with a hint), at once when its port refuses and within the deadline otherwise.

Server streams (logs, status watch) have no deadline; :meth:`BoundScheduler.open_stream` waits for
their first answer before the HTTP response starts, so an error there is still a proper HTTP status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import grpc
from bay.v1 import scheduler_pb2, scheduler_pb2_grpc

from libs.errors import Unavailable
from services.gateway.registry_client import Caller
from services.gateway.service_client import Q, R, ServiceClient

SCHEDULER_SERVICE = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name


class SchedulerClient(ServiceClient):
    """The scheduler of one cluster."""

    def __init__(self, cluster: str, addr: str, *, timeout: float) -> None:
        super().__init__(addr, timeout=timeout, health_service=SCHEDULER_SERVICE)
        self.cluster = cluster
        # SchedulerAsyncStub exists only for type checkers (mypy-protobuf): hence the quoted cast
        self.stub = cast(
            "scheduler_pb2_grpc.SchedulerAsyncStub", scheduler_pb2_grpc.SchedulerStub(self.channel)
        )

    @property
    def what(self) -> str:
        return f"the scheduler of cluster {self.cluster!r}"

    def down_hint(self) -> str:
        return (
            f"start the scheduler of cluster {self.cluster!r} (`bay up` runs the one of `local`; else "
            f"`BAY_CLUSTER={self.cluster} python -m services.scheduler`), or fix its address in the "
            "gateway's BAY_SCHEDULERS"
        )


class SchedulerPool:
    """Every configured cluster's scheduler."""

    def __init__(self, addresses: dict[str, str], *, timeout: float) -> None:
        self.clients = {
            cluster: SchedulerClient(cluster, addr, timeout=timeout) for cluster, addr in addresses.items()
        }

    @property
    def clusters(self) -> list[str]:
        return sorted(self.clients)

    def client(self, cluster: str) -> SchedulerClient:
        found = self.clients.get(cluster)
        if found is None:
            raise Unavailable(
                f"the gateway knows no scheduler for cluster {cluster!r}",
                hint="add the cluster's scheduler to the gateway's BAY_SCHEDULERS "
                '(JSON: {"<cluster>": "host:port"}) and restart the gateway',
            )
        return found

    async def serving(self, timeout: float) -> dict[str, bool]:
        """Each scheduler's health, asked all at once."""
        answers = await asyncio.gather(*(c.serving(timeout) for c in self.clients.values()))
        return dict(zip(self.clients, answers, strict=True))

    def bound(self, caller: Caller) -> BoundSchedulers:
        return BoundSchedulers(self, caller)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()))


@dataclass(frozen=True)
class BoundSchedulers:
    """The schedulers on behalf of one caller: what a route receives."""

    pool: SchedulerPool
    caller: Caller

    @property
    def clusters(self) -> list[str]:
        return self.pool.clusters

    def of(self, cluster: str) -> BoundScheduler:
        return BoundScheduler(self.pool.client(cluster), self.caller)


@dataclass(frozen=True)
class BoundScheduler:
    client: SchedulerClient
    caller: Caller

    @property
    def cluster(self) -> str:
        return self.client.cluster

    @property
    def stub(self) -> scheduler_pb2_grpc.SchedulerAsyncStub:
        return self.client.stub

    async def call(self, rpc: grpc.aio.UnaryUnaryMultiCallable[Q, R], request: Q) -> R:
        return await self.client.call(rpc, request, self.caller)

    async def open_stream(
        self,
        rpc: grpc.aio.UnaryStreamMultiCallable[Q, R],
        request: Q,
        *,
        first_within: float,
        first_required: bool,
    ) -> AsyncIterator[R]:
        """The stream's messages, once its first one came (or, unless ``first_required``, once
        ``first_within`` passed without an answer: a quiet log is not an error).

        An error before that is raised here; one after it ends the iterator with the BayError.
        The call is cancelled when the iterator is closed (the HTTP client went away).
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
                raise self.client.translate(exc) from exc
        elif first_required:
            call.cancel()
            raise self.client.late(first_within)
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
            raise self.client.translate(exc) from exc
        finally:
            first.cancel()
            call.cancel()
