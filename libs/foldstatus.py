"""The ``bay.v1.FoldStatus`` servicer: a service's fold of the log as its operator sees it.

Every service that folds the log (registry, scheduler, DNS) registers it with :func:`make_server`;
the gateway asks each one and shows the answers in ``/healthz`` and ``/metrics``. A skipped event
is logged once (``libs.views.platform``); this is where the count and the last one stay visible.
"""

from __future__ import annotations

from typing import Any

import grpc
from bay.v1 import fold_pb2, fold_pb2_grpc

from libs.eventlog.projection import Projection
from libs.views import PlatformView

SERVICE_NAME = fold_pb2.DESCRIPTOR.services_by_name["FoldStatus"].full_name


class FoldStatusServicer(fold_pb2_grpc.FoldStatusServicer):
    def __init__(self, service: str, projection: Projection[Any]) -> None:
        self.service = service
        self.projection = projection

    async def Get(
        self, request: fold_pb2.FoldStatusRequest, context: grpc.aio.ServicerContext
    ) -> fold_pb2.FoldStatusReply:
        state = self.projection.state
        skipped, last = (state.skipped, state.last_skipped) if isinstance(state, PlatformView) else (0, 0)
        return fold_pb2.FoldStatusReply(
            service=self.service,
            sequence=self.projection.sequence,
            skipped=skipped,
            last_skipped_sequence=last,
        )


def fold_status(service: str, projection: Projection[Any]) -> tuple[Any, Any, str]:
    """What :func:`libs.grpcutil.make_server` takes to serve it."""
    return (
        fold_pb2_grpc.add_FoldStatusServicer_to_server,
        FoldStatusServicer(service, projection),
        SERVICE_NAME,
    )
