"""Errors shared by every Bay service.

The tree (each service's own errors derive from these; third-party errors are translated where they
enter, with ``raise ... from exc``):

    BayError
    ├── ValidationFailed   a command or spec is invalid; carries one FieldViolation per bad field
    ├── NotFound           the named group, cluster, build or version does not exist
    ├── Conflict           a stale expected version, a concurrent writer, or a name already taken
    ├── Unauthenticated    no token, or an unknown one
    ├── PermissionDenied   the token's role may not do this
    ├── TooLarge           a command would make an event larger than one NATS message may be
    └── Unavailable        a dependency (NATS, a peer service) is down or did not answer in time

Entrypoints map them: gRPC INVALID_ARGUMENT / NOT_FOUND / ABORTED / UNAUTHENTICATED /
PERMISSION_DENIED / RESOURCE_EXHAUSTED / UNAVAILABLE, HTTP 422 / 404 / 409 / 401 / 403 / 413 / 503.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BayError",
    "Conflict",
    "FieldViolation",
    "NotFound",
    "PermissionDenied",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "ValidationFailed",
]


class BayError(Exception):
    """Root of every error Bay raises on purpose."""

    #: what the caller can do about it; shown in HTTP bodies and CLI output
    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint


@dataclass(frozen=True)
class FieldViolation:
    field: str  # dotted path, e.g. "spec.ports.0.name"
    description: str


class ValidationFailed(BayError):
    hint = "fix the fields named in `violations` and send the command again"

    def __init__(self, violations: list[FieldViolation], message: str = "") -> None:
        self.violations = list(violations)
        text = message or "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(text)


class NotFound(BayError):
    hint = "check the name; `bay get groups` lists what exists"


class Conflict(BayError):
    hint = "read the current state and retry against its version"

    def __init__(self, message: str, *, current_version: int | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        #: a stale expected version: the version the thing is at now, for a client to retry against
        #: (gRPC: an ErrorInfo detail, reason VERSION_CONFLICT; HTTP: ``current_version`` in the body)
        self.current_version = current_version


class Unauthenticated(BayError):
    hint = "send `Authorization: Bearer <token>`; `bay up` writes an admin token to .bay/admin.token"


class PermissionDenied(BayError):
    hint = "use a token with a role that allows this (viewer < operator < admin)"


class TooLarge(BayError):
    hint = "send a smaller spec (long values belong in a build or a file); nothing was written"


class Unavailable(BayError):
    #: no more than is known: a command that met this may or may not have been carried out, and the
    #: place that raises it says which where it knows (nothing sent, or an append that may be stored)
    hint = "a dependency is down or late; retry with the same idempotency key"
