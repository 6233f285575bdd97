"""Web hygiene in one place: CSRF tokens, the redirect allow-list, security headers.

* CSRF: a synchronizer token per session, in a hidden field of every form, compared in
  constant time on every POST (SameSite=Lax cookies are the second line).
* Redirects after login go only to this portal's own paths (no open redirect).
* Every response carries a CSP without inline script, no framing, no referrer, and
  HTML is ``no-store`` because pages may show a TOTP secret.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

CSRF_FIELD = "csrf_token"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SAFE_PATH = re.compile(r"^[A-Za-z0-9/._~\-]*$")


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, presented: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not presented or not hmac.compare_digest(str(expected), presented):
        raise CsrfRefused()


def safe_next(value: str | None, base_path: str, default: str) -> str:
    """``value`` if it is a path of this portal, else ``default``.

    Refused: absolute and scheme-relative URLs (``//evil``), backslashes (browsers read
    ``/\\evil`` as ``//evil``), dot segments, encoded characters, queries and anything
    outside ``base_path``.
    """
    if not value or len(value) > 256 or not _SAFE_PATH.match(value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.query or parts.fragment or value.startswith("//"):
        return default
    if value != base_path and not value.startswith(base_path + "/"):
        return default
    if any(seg in (".", "..") for seg in value.split("/")):
        return default
    return value


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith(request.app.state.static_prefix):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
