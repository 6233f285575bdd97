"""CORS for ``/validate/polltransaction``: the Keycloak, simpleSAMLphp and Shibboleth
plugins can poll from the user's browser, cross-origin. Off unless
``TWOFA_PI_CORS_ORIGINS`` lists origins (``*`` allows any); no credentials are involved,
since the endpoint is anonymous, and no other route gets these headers."""

from __future__ import annotations

from fastapi import Request

from services.core.plumbing.settings import Settings


def headers(settings: Settings, request: Request) -> dict[str, str]:
    allowed = settings.pi_cors_origin_list
    origin = request.headers.get("origin")
    if not allowed or not origin:
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    if origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def preflight_headers(settings: Settings, request: Request) -> dict[str, str]:
    found = headers(settings, request)
    if found:
        found.update(
            {"Access-Control-Allow-Methods": "GET, OPTIONS", "Access-Control-Max-Age": "600"}
        )
        wanted = request.headers.get("access-control-request-headers")
        if wanted:
            found["Access-Control-Allow-Headers"] = wanted
    return found
