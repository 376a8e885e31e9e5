"""The web UI's pages, its log-in and log-out, and ``/ui/session``.

Pages are static files (``static/``); the routes that serve them only check that the browser has
a session (else: the log-in page, which comes back after). Everything a page shows, it reads from
the REST API with the session cookie (``services.gateway.deps.authorization``).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from libs.errors import PermissionDenied, Unauthenticated
from services.gateway.deps import BackendsDep, SettingsDep, sessions
from services.gateway.ui.sessions import COOKIE, CSRF_HEADER, LoginLimiter, Session, SessionStore

STATIC = Path(__file__).parent / "static"
#: a log-in form is a token and where to go next: anything longer is not one
MAX_LOGIN_BODY = 4096

router = APIRouter(include_in_schema=False)
Sessions = Annotated[SessionStore, Depends(sessions)]


def login_limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


def _next_page(value: str | None) -> str:
    """Where to go after logging in: a page of the UI only (never another site: ``//evil``)."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"})


def _logged_in(request: Request, store: SessionStore) -> Session | None:
    return store.get(request.cookies.get(COOKIE))


def _page_for(request: Request, store: SessionStore, anonymous_read: bool, name: str) -> Response:
    if _logged_in(request, store) is None and not anonymous_read:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(here, safe='')}", status_code=303)
    return _page(name)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/")
async def overview_page(request: Request, store: Sessions, settings: SettingsDep) -> Response:
    return _page_for(request, store, settings.anonymous_read, "overview.html")


@router.get("/ui/events")
async def events_page(request: Request, store: Sessions, settings: SettingsDep) -> Response:
    return _page_for(request, store, settings.anonymous_read, "events.html")


@router.get("/ui/groups/{name}")
async def group_page(name: str, request: Request, store: Sessions, settings: SettingsDep) -> Response:
    """The group page (its script reads the name from the path)."""
    return _page_for(request, store, settings.anonymous_read, "group.html")


def login_page(*, error: str = "", next_page: str = "/ui/", status: int = 200) -> HTMLResponse:
    """The log-in form, with the message of a failed attempt and where to go after (both escaped)."""
    text = (STATIC / "login.html").read_text()
    text = text.replace('value="/ui/"', f'value="{html.escape(next_page, quote=True)}"', 1)
    if error:
        text = text.replace(
            '<p id="login-error" class="error" hidden></p>',
            f'<p id="login-error" class="error">{html.escape(error)}</p>',
            1,
        )
    return HTMLResponse(text, status, headers={"Cache-Control": "no-store"})


@router.get("/ui/login")
async def login_form(next: str | None = None) -> HTMLResponse:
    return login_page(next_page=_next_page(next))


def _same_origin(request: Request) -> bool:
    """Whether a form post came from the gateway's own page. Browsers say where a request comes
    from in ``Sec-Fetch-Site``; ``Origin`` is ``null`` under ``Referrer-Policy: no-referrer``, so
    only an ``Origin`` naming another site counts against it."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


@router.post("/ui/login")
async def login(
    request: Request,
    backends: BackendsDep,
    store: Sessions,
    limiter: Annotated[LoginLimiter, Depends(login_limiter)],
) -> Response:
    """Check the token once with the TokenStore; a session keeps it, the browser gets only its id."""
    client = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client)
    if wait > 0:
        seconds = math.ceil(wait)
        said = f"too many failed log-ins from {client}: try again in {seconds} s"
        page = login_page(error=said, status=429)
        page.headers["Retry-After"] = str(seconds)
        return page
    if not _same_origin(request):
        return login_page(error="a log-in must come from Bay's own log-in page", status=403)
    raw = await request.body()
    if len(raw) > MAX_LOGIN_BODY:
        return login_page(error="the form is too large to be a log-in", status=413)
    form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=5)
    token = (form.get("token") or [""])[0].strip()
    next_page = _next_page((form.get("next") or [""])[0])
    if not token:
        said = "token: paste a Bay token (bay token create ...)"
        return login_page(error=said, next_page=next_page, status=400)
    authorization = f"Bearer {token}"
    try:
        who = backends.tokens.authenticate(authorization, needed="viewer")
    except (Unauthenticated, PermissionDenied):
        limiter.failed(client)
        return login_page(error="unknown token", next_page=next_page, status=401)
    session = store.create(authorization, who.name, who.role)
    response = RedirectResponse(next_page, status_code=303)
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/ui/logout")
async def logout(request: Request, store: Sessions) -> Response:
    """Ends the session (only with its CSRF token: another site cannot log anyone out)."""
    session = _logged_in(request, store)
    if session is not None and session.csrf_matches(request.headers.get(CSRF_HEADER)):
        store.delete(session.id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/ui/session")
async def current_session(request: Request, store: Sessions, settings: SettingsDep) -> JSONResponse:
    """Who is logged in and the CSRF token a page sends with each change (never the token)."""
    session = _logged_in(request, store)
    headers = {"Cache-Control": "no-store"}
    if session is not None:
        body = {"user": session.user, "role": session.role, "csrf": session.csrf}
        return JSONResponse(body, headers=headers)
    if settings.anonymous_read:
        return JSONResponse({"user": "anonymous", "role": "viewer", "csrf": ""}, headers=headers)
    return JSONResponse(
        {"error": "unauthenticated", "message": "not logged in", "hint": "log in at /ui/login"},
        401,
        headers=headers,
    )
