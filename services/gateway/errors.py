"""Errors at the HTTP edge: the only place where an error becomes an HTTP status.

The gateway's own errors are about the HTTP request itself, found before any command exists:

    BayError (libs.errors)
    └── GatewayError
        ├── MalformedBody          400  the body is not parseable JSON or YAML
        ├── BodyTooLarge           413  over ``max_body_bytes``
        └── UnsupportedMediaType   415  neither JSON nor YAML

Every error body has one shape: ``{"error": code, "message", "hint", "violations", "current_version"}``,
``violations`` only on 422 (``[{"field": dotted path in the body sent, "description"}]``),
``current_version`` only on a 409 for a stale ``If-Match`` (the group's version now: retry against it).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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

log = logging.getLogger("bay.gateway")


class GatewayError(BayError):
    """Root of the errors the gateway raises about a request's form."""


class MalformedBody(GatewayError):
    hint = "send one well-formed JSON or YAML document"


class BodyTooLarge(GatewayError):
    hint = "a group spec is small: send less than the limit"


class UnsupportedMediaType(GatewayError):
    hint = "send Content-Type: application/json or application/yaml"


_STATUS: list[tuple[type[BayError], int, str]] = [
    (ValidationFailed, 422, "validation_failed"),
    (MalformedBody, 400, "malformed_body"),
    (BodyTooLarge, 413, "body_too_large"),
    (TooLarge, 413, "too_large"),
    (UnsupportedMediaType, 415, "unsupported_media_type"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (Unauthenticated, 401, "unauthenticated"),
    (PermissionDenied, 403, "permission_denied"),
    (Unavailable, 503, "unavailable"),
]


def status_for(exc: BayError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal"


def error_body(
    code: str,
    message: str,
    hint: str = "",
    violations: list[FieldViolation] | None = None,
    current_version: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message, "hint": hint}
    if violations is not None:
        body["violations"] = [{"field": v.field, "description": v.description} for v in violations]
    if current_version is not None:
        body["current_version"] = current_version
    return body


def _headers(status: int) -> dict[str, str]:
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status == 503:
        return {"Retry-After": "1"}
    return {}


async def bay_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BayError)
    status, code = status_for(exc)
    violations = exc.violations if isinstance(exc, ValidationFailed) else None
    current = exc.current_version if isinstance(exc, Conflict) else None
    if status == 500:
        log.error("unexpected %s: %s", type(exc).__name__, exc.message)
    body = error_body(code, exc.message, exc.hint, violations, current)
    return JSONResponse(body, status, headers=_headers(status))


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "request"


async def request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    violations = [
        FieldViolation(
            _dotted(tuple(e.get("loc", ()))), str(e.get("msg", "invalid")).removeprefix("Value error, ")
        )
        for e in exc.errors()
    ]
    failed = ValidationFailed(violations)
    return await bay_error_handler(request, failed)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path.

    Starlette answers 405 from the first route whose path matches, and FastAPI makes one route per
    method, so its ``Allow`` would name only that one route's methods (``GET`` where PUT and DELETE
    are served too). Asking the routes about each method keeps to their public ``matches``."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        code = "error"
    hint = "see /docs for the API" if exc.status_code in (404, 405) else ""
    message = str(exc.detail)
    headers = {**(exc.headers or {})}
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not served at {request.url.path}; {headers['Allow']} are"
    return JSONResponse(error_body(code, message, hint), exc.status_code, headers=headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    correlation = getattr(request.state, "correlation_id", "")
    log.exception("unexpected error (correlation id %s)", correlation, exc_info=exc)
    body = error_body(
        "internal", f"unexpected error in the gateway (correlation id {correlation})", "see the gateway's log"
    )
    return JSONResponse(body, 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BayError, bay_error_handler)
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
