"""Dependencies of the routes, as ``Annotated`` aliases (``who: Operator``, ``doc: Document``...).

Order matters and is fixed here: a mutation's body is read only after its token passed
(``document`` depends on ``operator``), so a caller without the right role never gets a byte parsed.
"""

from __future__ import annotations

from typing import Annotated, Any

from bay.v1 import registry_pb2
from fastapi import Depends, Header, Request

from libs.auth import Principal
from libs.clients import AutoscalerClient, Caller, DeployerClient, DnsClient, RegistryClient, SchedulerPool
from libs.errors import FieldViolation, PermissionDenied, ValidationFailed
from libs.spec import MAX_VERSION
from services.gateway.backends import Backends
from services.gateway.body import read_document
from services.gateway.settings import GatewaySettings
from services.gateway.ui.sessions import COOKIE, CSRF_HEADER, SessionStore


def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def get_backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
BackendsDep = Annotated[Backends, Depends(get_backends)]


def sessions(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


#: methods that change nothing: the session cookie alone is enough for them
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def authorization(request: Request) -> str | None:
    """The ``Authorization`` value this request acts with: its own header, else the token of the
    web UI session its ``bay_session`` cookie names.

    A cookie is sent by the browser whoever made the page, so a change made with it must also carry
    the session's ``X-CSRF-Token``, which only Bay's own pages can read (``/ui/session``, same
    origin). A cookie naming no live session counts as no credentials (401 as usual)."""
    header = request.headers.get("authorization")
    if header:
        return header
    session = sessions(request).get(request.cookies.get(COOKIE))
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
        raise PermissionDenied(
            f"a change made with the web UI's session cookie needs the {CSRF_HEADER} header of its "
            "session (GET /ui/session): refused as a possible cross-site request",
            hint="use Bay's pages, or send `Authorization: Bearer <token>` instead of the cookie",
        )
    return session.authorization


def viewer(request: Request, backends: BackendsDep) -> Principal:
    return backends.tokens.authenticate(authorization(request), needed="viewer")


def operator(request: Request, backends: BackendsDep) -> Principal:
    return backends.tokens.authenticate(authorization(request), needed="operator")


Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]


def _caller(request: Request) -> Caller:
    return Caller(authorization(request), request.state.correlation_id)


def registry(request: Request, backends: BackendsDep) -> RegistryClient:
    """The registry, called with this request's token and correlation id."""
    return backends.registry.with_caller(_caller(request))


def schedulers(request: Request, backends: BackendsDep) -> SchedulerPool:
    """The clusters' schedulers, called with this request's token and correlation id."""
    return backends.schedulers.with_caller(_caller(request))


def dns(request: Request, backends: BackendsDep) -> DnsClient:
    """The DNS service, called with this request's token and correlation id."""
    return backends.dns.with_caller(_caller(request))


def deployer(request: Request, backends: BackendsDep) -> DeployerClient:
    """The deployer, called with this request's token and correlation id."""
    return backends.deployer.with_caller(_caller(request))


def autoscaler(request: Request, backends: BackendsDep) -> AutoscalerClient:
    """The autoscaler, called with this request's token and correlation id."""
    return backends.autoscaler.with_caller(_caller(request))


Registry = Annotated[RegistryClient, Depends(registry)]
Schedulers = Annotated[SchedulerPool, Depends(schedulers)]
Dns = Annotated[DnsClient, Depends(dns)]
Deployer = Annotated[DeployerClient, Depends(deployer)]
Autoscaler = Annotated[AutoscalerClient, Depends(autoscaler)]


def parse_if_match(value: str) -> int:
    """``If-Match: 3``, ``"3"`` or ``W/"3"`` (the ETag the gateway sends) as a spec version."""
    tag = value.strip().removeprefix("W/").strip('"')
    # the length first: int() of thousands of digits is refused by Python (and slow before that)
    if not tag.isdigit() or len(tag) > len(str(MAX_VERSION)) or not 1 <= int(tag) <= MAX_VERSION:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ValidationFailed(
            [
                FieldViolation(
                    "If-Match", f'must be a group version (1 to {MAX_VERSION}) such as "3", not {shown!r}'
                )
            ]
        )
    return int(tag)


def idempotency_key(
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="a retry with the same key changes nothing")
    ] = None,
) -> str:
    """The ``Idempotency-Key`` header alone (a command that has no version to match): "" if none."""
    if idempotency_key is None:
        return ""
    key = idempotency_key.strip()
    if not key or len(key) > 200:
        raise ValidationFailed([FieldViolation("Idempotency-Key", "must be 1 to 200 characters")])
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]


def command_options(
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="a retry with the same key changes nothing")
    ] = None,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description="the group version the change is meant for")
    ] = None,
) -> registry_pb2.CommandOptions:
    opts = registry_pb2.CommandOptions()
    if idempotency_key is not None:
        key = idempotency_key.strip()
        if not key or len(key) > 200:
            raise ValidationFailed([FieldViolation("Idempotency-Key", "must be 1 to 200 characters")])
        opts.idempotency_key = key
    if if_match is not None and if_match.strip() != "*":
        opts.expected_version = parse_if_match(if_match)
    return opts


Options = Annotated[registry_pb2.CommandOptions, Depends(command_options)]


async def document(request: Request, _: Operator, backends: BackendsDep) -> Any:
    return await read_document(request, backends.max_body_bytes)


Document = Annotated[Any, Depends(document)]
