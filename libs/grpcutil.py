"""gRPC plumbing shared by every Bay service.

- :func:`make_server`: a grpc.aio server with health checking, reflection (v1 and v1alpha, see
  :mod:`libs.reflection`) and OpenTelemetry. Given the service's NATS connection, health says
  NOT_SERVING while that connection stays down (a service cut off the log cannot serve).
- :class:`RefuseUndecodable` (in every server :func:`make_server` makes): a request body that is not
  its message type is INVALID_ARGUMENT naming ``request``, not UNKNOWN from deep inside grpc.
- :func:`abort_with`: a :class:`~libs.errors.BayError` as a gRPC status, with machine-readable
  details in ``grpc-status-details-bin`` (a ``google.rpc.Status``; the protos are in ``protos/google/rpc``
  for other languages): field violations as ``BadRequest``, a stale version's current one as
  ``ErrorInfo`` (reason ``VERSION_CONFLICT``, domain ``bay``, metadata ``current_version``), the hint as
  ``Help``. :func:`error_from_rpc` turns it back on the client side.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from libs.errors import (
    BayError,
    Conflict,
    FieldViolation,
    NotFound,
    PermissionDenied,
    TooLarge,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from libs.natsconn import NatsConnection
from libs.reflection import enable_reflection

_TO_CODE: list[tuple[type[BayError], grpc.StatusCode]] = [
    (ValidationFailed, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.ABORTED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
]

MAX_MESSAGE = 8 * 1024 * 1024

#: ``google.rpc.ErrorInfo`` of Bay's errors: the domain, and the reasons a client may branch on
ERROR_DOMAIN = "bay"
VERSION_CONFLICT = "VERSION_CONFLICT"


def status_code_for(exc: BayError) -> grpc.StatusCode:
    for cls, code in _TO_CODE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


#: what one error may say: gRPC refuses trailers over 16 KiB (the caller then gets RESOURCE_EXHAUSTED
#: instead of the error), and the message goes twice (grpc-message and the status details)
MAX_ERROR_TEXT = 1024
MAX_VIOLATIONS = 50


def _clip(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def abort_with(context: grpc.aio.ServicerContext, exc: BayError) -> NoReturn:
    code = status_code_for(exc)
    status = status_pb2.Status(code=code.value[0], message=_clip(exc.message))
    if isinstance(exc, ValidationFailed):
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_clip(v.field, 256), description=_clip(v.description, 256)
                )
                for v in exc.violations[:MAX_VIOLATIONS]
            ]
        )
        status.details.add().Pack(detail)
    if isinstance(exc, Conflict) and exc.current_version is not None:
        info = error_details_pb2.ErrorInfo(
            reason=VERSION_CONFLICT,
            domain=ERROR_DOMAIN,
            metadata={"current_version": str(exc.current_version)},  # ErrorInfo's values are strings
        )
        status.details.add().Pack(info)
    if exc.hint:
        help_ = error_details_pb2.Help(links=[error_details_pb2.Help.Link(description=exc.hint)])
        status.details.add().Pack(help_)
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("unreachable")  # abort_with_status raises


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def translate_errors(fn: F) -> F:
    """Servicer method decorator: a BayError leaves as its gRPC status."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except BayError as exc:
            await abort_with(context, exc)

    return wrapper  # type: ignore[return-value]


class _Undecodable:
    """A request body that did not parse, handed to the method in place of the request."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # DecodeError, and whatever else a parser of hostile bytes raises
            return _Undecodable(str(exc) or type(exc).__name__)

    return parse


async def _refuse(context: grpc.aio.ServicerContext, request: _Undecodable) -> NoReturn:
    await abort_with(
        context, ValidationFailed([FieldViolation("request", f"is not a valid message: {request.error}")])
    )


class RefuseUndecodable(grpc.aio.ServerInterceptor):
    """Garbage in a request body is the caller's error: INVALID_ARGUMENT naming ``request``.

    grpc parses the body before any servicer code runs and reports a parser's exception as UNKNOWN;
    here the parser's failure is handed on as a value, and the method refuses it. Client-streaming
    methods (reflection only) are left as they are.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None or handler.request_streaming:
            return handler
        parse = _lenient(handler.request_deserializer)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, _Undecodable):
                    await _refuse(context, request)
                return await unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, request_deserializer=parse, response_serializer=handler.response_serializer
            )
        if handler.unary_stream is not None:
            streaming = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                if isinstance(request, _Undecodable):
                    await _refuse(context, request)
                replies = streaming(request, context)
                if inspect.isasyncgen(replies):
                    async for reply in replies:
                        yield reply
                else:  # a method that writes with context.write()
                    await replies

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, request_deserializer=parse, response_serializer=handler.response_serializer
            )
        return handler


def _details(exc: grpc.aio.AioRpcError) -> list[Any]:
    """The ``google.rpc.Status`` details of a failed call (none when it sent no Status)."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    return list(status.details) if status is not None else []


def _current_version(details: list[Any]) -> int | None:
    for d in details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            value = info.metadata.get("current_version", "")
            if (info.domain, info.reason) == (ERROR_DOMAIN, VERSION_CONFLICT) and value.isdigit():
                return int(value)
    return None


def hint_of(exc: grpc.aio.AioRpcError) -> str:
    """The hint the service sent with its error (a ``Help`` detail), or "" when it sent none (the
    call failed before the service answered: refused, reset, or by the deadline)."""
    for d in _details(exc):
        if d.Is(error_details_pb2.Help.DESCRIPTOR):
            help_ = error_details_pb2.Help()
            d.Unpack(help_)
            if help_.links:
                return help_.links[0].description
    return ""


def error_from_rpc(exc: grpc.aio.AioRpcError) -> BayError:
    """The BayError a failed call stands for (used by clients such as the gateway)."""
    err = _error_from_rpc(exc)
    hint = hint_of(exc)
    if hint:
        err.hint = hint  # what the service knows (e.g. whether an append may be stored) goes on
    return err


def _error_from_rpc(exc: grpc.aio.AioRpcError) -> BayError:
    code = exc.code()
    message = exc.details() or code.name
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations: list[FieldViolation] = []
        for d in _details(exc):
            if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                d.Unpack(br)
                violations += [FieldViolation(v.field, v.description) for v in br.field_violations]
        return ValidationFailed(violations or [FieldViolation("request", message)], message)
    if code == grpc.StatusCode.ABORTED:
        return Conflict(message, current_version=_current_version(_details(exc)))
    for cls, c in _TO_CODE:
        if c == code:
            return cls(message)
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return Unavailable(f"the service did not answer in time ({message})")
    return BayError(f"{code.name}: {message}")


async def make_server(
    bind: str,
    register: Sequence[tuple[Callable[[Any, grpc.aio.Server], None], Any, str]],
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    nats: NatsConnection | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Server with the given servicers plus health and reflection; returns it and its bound port."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), RefuseUndecodable(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    names = []
    for add, servicer, name in register:
        add(servicer, server)
        names.append(name)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING

    async def follow_nats(healthy: bool) -> None:
        for name in ["", *names]:
            await health_servicer.set(name, serving if healthy else not_serving)

    await follow_nats(nats is None or nats.healthy)
    if nats is not None:
        nats.on_health(follow_nats)
    enable_reflection([*names, health.SERVICE_NAME], server)
    port = server.add_insecure_port(bind)
    if port == 0:
        raise Unavailable(f"cannot listen on {bind}")
    return server, port


def metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:
    """One value of the call's metadata (e.g. ``authorization``), or None."""
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return None


def channel(target: str, *, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A client channel with OpenTelemetry, so a trace continues into the called service.

    ``options`` are added to the defaults (e.g. ``grpc.max_reconnect_backoff_ms``: gRPC's reconnect
    backoff grows to 120 s, which keeps a caller failing long after the service is back).

    Each channel keeps its own connections (``grpc.use_local_subchannel_pool``): gRPC otherwise shares
    them between channels to the same address, so a new channel to a service that has just come up
    on a port that refused a moment ago inherits the old connection's backoff and fails at once with
    the stale "Connection refused"."""
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return grpc.aio.insecure_channel(
        target,
        interceptors=aio_client_interceptors(),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.use_local_subchannel_pool", 1),
            *options,
        ],
    )
