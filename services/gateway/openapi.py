"""OpenAPI for bodies the gateway reads itself (see ``body``): their schemas, in JSON and YAML."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_BODY_MODELS: dict[str, type[BaseModel]] = {}


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


def install_openapi(app: FastAPI) -> None:
    """Add the body models' schemas (and their nested ones) to the generated document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, model in _BODY_MODELS.items():
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for sub_name, sub in js.pop("$defs", {}).items():
                    schemas.setdefault(sub_name, sub)
                schemas[name] = js
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
