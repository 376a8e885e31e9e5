"""The OpenAPI document, completed where FastAPI cannot see what the gateway does:

- bodies the gateway reads itself (see ``body``): their schemas, in JSON and YAML;
- the bearer token: an HTTP ``bearer`` security scheme, required by each operation whose route
  depends on a role check (``viewer``: optional when anonymous reads are allowed);
- the ``If-Match`` and ``Idempotency-Key`` headers: the patterns their parser takes
  (``services.gateway.params``), where FastAPI would say "any string".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from services.gateway.params import IDEMPOTENCY_KEY_RE, IF_MATCH_RE

_BODY_MODELS: dict[str, type[BaseModel]] = {}

SECURITY_SCHEME = "bearer"
_HEADER_PATTERNS = {"If-Match": IF_MATCH_RE, "Idempotency-Key": IDEMPOTENCY_KEY_RE}


def body_of(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is ``model``, sent as JSON or YAML."""
    _BODY_MODELS[model.__name__] = model
    schema = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": schema, "application/yaml": schema},
        }
    }


def _role_of(dependant: Dependant, roles: dict[Callable[..., Any], str]) -> str | None:
    """The role a route's dependencies check (the highest, should there be several)."""
    found = [roles[d.call] for d in dependant.dependencies if d.call in roles]
    found += [r for d in dependant.dependencies if (r := _role_of(d, roles))]
    ranked = list(roles.values())
    return max(found, key=ranked.index) if found else None


def _secure(doc: dict[str, Any], routes: Iterable[APIRoute], roles: dict[Callable[..., Any], str],
            anonymous_read: bool) -> None:  # fmt: skip
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "a Bay token (`bay token create`): a viewer token reads, an operator token "
        "changes things; `bay up` writes an admin token to .bay/admin.token",
    }
    for route in routes:
        role = _role_of(route.dependant, roles)
        operations = doc["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if role is None or operation is None:
                continue
            required: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]
            # an empty requirement: the token may be left out (anonymous reads, viewer routes only)
            operation["security"] = [*required, {}] if role == "viewer" and anonymous_read else required
            operation["x-bay-role"] = role


def _header_patterns(doc: dict[str, Any]) -> None:
    for operations in doc["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", ()):
                pattern = _HEADER_PATTERNS.get(param["name"]) if param["in"] == "header" else None
                if pattern:
                    # a header is a string or absent: FastAPI's "string or null" cannot be sent
                    param["schema"] = {"type": "string", "pattern": pattern}


def install_openapi(
    app: FastAPI,
    routers: Iterable[APIRouter],
    *,
    roles: dict[Callable[..., Any], str],
    anonymous_read: bool,
) -> None:
    """Complete the generated document: body schemas, security, header patterns.

    ``roles`` maps each role-checking dependency to its role, lowest first (e.g. ``{viewer:
    "viewer", operator: "operator"}``); ``anonymous_read`` as the gateway's settings say."""
    generate = app.openapi
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, model in _BODY_MODELS.items():
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for sub_name, sub in js.pop("$defs", {}).items():
                    schemas.setdefault(sub_name, sub)
                schemas[name] = js
            _secure(doc, routes, roles, anonymous_read)
            _header_patterns(doc)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
