"""The portal's application factory: pages under ``base_path`` (default ``/portal``).

Composition: settings → an API client (the portal's own key) and the account store →
routes. Tests hand in a client bound to an in-process API and a temp account store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from services.portal.accounts import AccountStore
from services.portal.apiclient import ApiError, ApiUnavailable, TwofaClient
from services.portal.messages import say
from services.portal.settings import PortalSettings
from services.portal.web import CsrfRefused, SecurityHeaders, csrf_token

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return _render(request, name, status, context, leave_session=False)


def render_quietly(request: Request, name: str, status: int, **context: Any) -> HTMLResponse:
    """For pages a browser also fetches on its own (a missing favicon's 404): they must
    neither start a session (its cookie would replace the one of the page being filled
    in) nor take that page's flash message."""
    return _render(request, name, status, context, leave_session=True)


def _render(request: Request, name: str, status: int, context: dict[str, Any], *,
            leave_session: bool) -> HTMLResponse:
    settings: PortalSettings = request.app.state.settings
    context.update(
        base=settings.base_path,
        csrf=request.session.get("csrf", "") if leave_session else csrf_token(request),
        user=request.session.get("user"),
        flash=None if leave_session else request.session.pop("flash", None),
    )
    return templates.TemplateResponse(request, name, context, status_code=status)


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 to one of this portal's paths (``path`` is relative to ``base_path``)."""
    return RedirectResponse(request.app.state.settings.base_path + path, status_code=303)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session["flash"] = {"kind": kind, "message": message}


def create_app(
    settings: PortalSettings | None = None,
    client: TwofaClient | None = None,
    accounts: AccountStore | None = None,
) -> FastAPI:
    from services.portal.routes import (  # routes import render/redirect from here
        account,
        contact,
        login,
        step_up,
    )

    settings = settings or PortalSettings()
    if client is None:
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        client = TwofaClient.connect(settings.api_url, key, settings.api_timeout_seconds)
    owns_accounts = accounts is None
    accounts = accounts or AccountStore(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_accounts:
            accounts.close()

    base = settings.base_path
    app = FastAPI(title="twofa portal", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings, app.state.client, app.state.accounts = settings, client, accounts
    app.state.static_prefix = f"{base}/static/"
    app.mount(f"{base}/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(login.router, prefix=base)
    app.include_router(account.router, prefix=base)
    app.include_router(step_up.router, prefix=base)
    app.include_router(contact.router, prefix=base)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{base}/", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        return render(request, "error.html", 403, title="Form expired",
                      message="This form has expired or did not come from this portal. "
                              "Go back, reload the page and try again.")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"{base}/login?next={exc.next_path}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return render_quietly(request, "error.html", 404, title="Page not found",
                          message="There is no page at this address. Check the link, or go "
                                  "back to the portal.")
        return render_quietly(request, "error.html", exc.status_code, title="That did not work",
                      message="The portal cannot do that from here. Go back to the portal "
                              "and try again.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _: RequestValidationError) -> Response:
        # Forms check their own fields and answer with their page; this is what is left
        # (a tampered or truncated request). The values are not echoed.
        return render(request, "error.html", 422, title="Something is missing",
                      message="The form arrived incomplete or with a value that is too long. "
                              "Go back, check what you entered and send it again.")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return render(request, "error.html", exc.status, title="That did not work",
                      message=say(exc))

    @app.exception_handler(ApiUnavailable)
    async def _api_down(request: Request, _: ApiUnavailable) -> Response:
        return render(request, "error.html", 503, title="Try again later",
                      message="The two-factor service is not available right now.")

    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret(),
        session_cookie="twofa_portal",
        max_age=settings.session_max_age_seconds,
        path=base,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    return app
