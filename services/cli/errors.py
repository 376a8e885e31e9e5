"""How the CLI fails: one exception carrying the exit code, and the mapping from HTTP status.

Exit codes (also in ``bay --help``): 0 ok; 1 usage or validation (any other 4xx, bad input files);
2 not found (404); 3 conflict (409, 412); 4 authentication or permission (401, 403, no token);
5 unavailable (502, 503, 504, connection refused or timed out); 6 not ready in time (``--wait``
ran out of ``--timeout``: the change was made, the tasks are not all ready yet); 7 a deployment
``--wait`` followed ended otherwise than succeeded (failed, rolled back, aborted, superseded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    USAGE = 1
    NOT_FOUND = 2
    CONFLICT = 3
    AUTH = 4
    UNAVAILABLE = 5
    NOT_READY = 6
    DEPLOYMENT_FAILED = 7


EPILOG = (
    "Exit codes: 0 ok; 1 usage or validation error (bad input, HTTP 4xx); 2 not found (404); "
    "3 conflict (409); 4 authentication or permission (401/403); "
    "5 unavailable (503, or the gateway is not reachable); "
    "6 not ready in time (--wait ran out of --timeout; the change itself was made); "
    "7 the deployment failed (bay deploy --wait: failed, rolled back, aborted or superseded)."
)


def exit_code_for_status(status: int) -> ExitCode:
    if status < 400:
        return ExitCode.OK
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (409, 412):
        return ExitCode.CONFLICT
    if status in (401, 403):
        return ExitCode.AUTH
    if status in (502, 503, 504):
        return ExitCode.UNAVAILABLE
    return ExitCode.USAGE


@dataclass(frozen=True)
class Violation:
    field: str
    description: str


@dataclass
class CliError(Exception):
    """Something the user must hear about; ``code`` is the process exit code."""

    message: str
    code: ExitCode = ExitCode.USAGE
    hint: str = ""
    violations: list[Violation] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


def error_from_response(status: int, body: bytes, url: str = "") -> CliError:
    """The gateway's error body (``{"error","message","hint","violations"}``) as a CliError;
    a body that is not that (a proxy's HTML page) still yields the status and some text."""
    code = exit_code_for_status(status)
    data: Any = None
    try:
        data = json.loads(body) if body else None
    except ValueError:
        pass
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        violations = [
            Violation(str(v.get("field", "")), str(v.get("description", "")))
            for v in data.get("violations") or []
            if isinstance(v, dict)
        ]
        return CliError(data["message"], code, str(data.get("hint") or ""), violations)
    if isinstance(data, dict) and "detail" in data:  # FastAPI's own errors (e.g. a bad path)
        detail = data["detail"]
        if isinstance(detail, list):
            violations = [
                Violation(".".join(str(p) for p in d.get("loc", [])), str(d.get("msg", "")))
                for d in detail
                if isinstance(d, dict)
            ]
            return CliError(f"HTTP {status}: the request was not accepted", code, violations=violations)
        return CliError(f"HTTP {status}: {detail}", code)
    text = body.decode(errors="replace").strip()[:200] if body else ""
    where = f" from {url}" if url else ""
    return CliError(f"HTTP {status}{where}" + (f": {text}" if text else ""), code)
