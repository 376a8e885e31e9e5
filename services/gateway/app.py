"""The FastAPI app: routers, error handlers, middleware and tracing wired in one place."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from services.gateway import deps
from services.gateway.backends import Backends
from services.gateway.errors import install_error_handlers
from services.gateway.metrics import GatewayMetrics, MetricsMiddleware
from services.gateway.middleware import CorrelationIdMiddleware
from services.gateway.openapi import install_openapi
from services.gateway.routes import ERROR_RESPONSES, api_routers, health
from services.gateway.settings import GatewaySettings
from services.gateway.ui import routes as ui_routes
from services.gateway.ui.headers import SecurityHeadersMiddleware
from services.gateway.ui.sessions import LoginLimiter, SessionStore

DESCRIPTION = """Bay's REST API. Send `Authorization: Bearer <token>`: a viewer token reads, an operator
token changes things. Bodies are JSON or YAML. `Idempotency-Key` makes a retried command harmless;
`If-Match: "<version>"` makes a change apply only to that version of the group. Every error is
`{"error", "message", "hint", "violations"?}`."""


def create_app(settings: GatewaySettings, backends: Backends) -> FastAPI:
    """The app over already opened backends (tests build it in-process around their own)."""
    app = FastAPI(
        title="Bay gateway",
        version="1",
        description=DESCRIPTION,
        separate_input_output_schemas=False,  # one schema per model: GroupSpec reads as it is written
    )
    app.state.settings = settings
    app.state.backends = backends
    app.state.metrics = GatewayMetrics()
    app.state.sessions = SessionStore(settings.ui_session_seconds)
    app.state.login_limiter = LoginLimiter(settings.ui_login_failures, settings.ui_login_window_seconds)
    install_error_handlers(app)
    for router in api_routers:
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(health.router)
    app.include_router(ui_routes.router)
    app.mount("/ui/static", StaticFiles(directory=ui_routes.STATIC), name="ui-static")
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(CorrelationIdMiddleware)  # errors carry the id too
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: every answer has them, errors too
    install_openapi(
        app,
        [*api_routers, health.router],
        roles={deps.viewer: "viewer", deps.operator: "operator"},
        anonymous_read=settings.anonymous_read,
    )
    # the server span's context reaches the registry through libs.grpcutil's client interceptor
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,metrics", exclude_spans=["receive", "send"]
    )
    return app
