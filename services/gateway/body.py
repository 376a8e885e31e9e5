"""Reading a request body: media type, size limit, then JSON or YAML into plain data.

The gateway reads bodies itself rather than through FastAPI's body parameters, so that the token
is checked before a byte of the body is read (see ``deps.document``), one size limit covers every
route, and JSON and YAML documents go through the same validation (``libs.spec.validate_spec``).

The size limit is derived from the NATS server's ``max_payload`` (:func:`body_limit`): a body
becomes one event, and one event is one NATS message, its envelope and headers included. A body
under the limit whose event still does not fit (its encoding grew it) is refused by the event log
with the same 413, before anything is written.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from libs.errors import BayError, ValidationFailed
from libs.spec import violations_from
from services.gateway.errors import BodyTooLarge, MalformedBody, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


#: what an event holds besides the body's own content: the envelope (ids, actor, correlation,
#: time), the spec's defaults and the message headers (msg id, expected sequence, traceparent); a
#: 1 MiB server took 332 bytes for them, so 8 KiB leaves room for long names and keys
ENVELOPE_ROOM = 8 * 1024


def body_limit(max_payload: int, configured: int | None) -> int:
    """The largest body the gateway takes, given the server's ``max_payload``; a configured limit
    above what fits is refused at start-up (it would only turn 413s into 413s later, or worse)."""
    fits = max_payload - ENVELOPE_ROOM
    if fits <= 0:
        raise BayError(
            f"the NATS server takes messages of at most {max_payload} bytes: too few for an event",
            hint="raise max_payload in the nats-server configuration",
        )
    if configured is None:
        return fits
    if configured > fits:
        raise BayError(
            f"BAY_MAX_BODY_BYTES={configured} is over what one event can carry: the NATS server's "
            f"max_payload is {max_payload} bytes, so bodies may be at most {fits} bytes",
            hint=f"unset BAY_MAX_BODY_BYTES (the default is {fits}), or raise max_payload in nats-server",
        )
    return configured


def media_kind(content_type: str | None) -> str:
    """``json`` or ``yaml``; a missing Content-Type is taken as JSON (a script posting raw bytes)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media or media in JSON_TYPES or media.endswith("+json"):
        return "json"
    if media in YAML_TYPES:
        return "yaml"
    raise UnsupportedMediaType(f"cannot read a body of type {media!r}")


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refusing early on Content-Length and again on the bytes actually received."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {int(declared)} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors' aliases: a few bytes of ``*ref`` can expand to gigabytes of data."""

    def fetch_alias(self) -> None:
        raise yaml.scanner.ScannerError(None, None, "aliases (*name) are not allowed", self.get_mark())


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"malformed JSON: not UTF-8 text at byte {exc.start}") from None
    except RecursionError:
        raise MalformedBody("malformed JSON: nested too deeply") from None


def parse_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_NoAliasLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise MalformedBody(f"malformed YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise MalformedBody(f"malformed YAML: {exc}") from None
    except RecursionError:
        raise MalformedBody("malformed YAML: nested too deeply") from None


async def read_document(request: Request, limit: int) -> Any:
    """The body as plain data (dicts, lists, scalars); never empty."""
    kind = media_kind(request.headers.get("content-type"))
    raw = await read_limited(request, limit)
    if not raw.strip():
        raise MalformedBody(f"the body is empty: send a {kind.upper()} document")
    if kind == "json":
        return parse_json(raw)
    return await run_in_threadpool(parse_yaml, raw)  # pure-Python YAML: keep the event loop free


def validate_body(model: type[M], doc: Any) -> M:
    """``doc`` as ``model``, or ValidationFailed naming each bad field by its path in the body."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ValidationFailed(violations_from(exc)) from None
