"""What FastAPI resolves before a handler runs.

Every dependency is a resolution of its own on every request (signature walk, parameter
extraction, a call), which on the login paths cost more than reading the login's form. The
privacyIDEA-compatible routes take the request alone; an API key check resolves the bearer
scheme and nothing else. The correlation header those routes no longer declare through a
dependency stays in the OpenAPI document.
"""

from __future__ import annotations

from fastapi.routing import APIRoute

from services.api.deps import API_KEY, require
from services.api.privacyidea import routes as privacyidea
from services.api.routes import challenges


def _api_routes(router: object) -> list[APIRoute]:
    return [r for r in router.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]


def test_privacyidea_routes_resolve_no_dependency() -> None:
    routes = _api_routes(privacyidea.router)
    assert {r.path for r in routes} >= {"/validate/check", "/validate/triggerchallenge", "/auth"}
    for route in routes:
        assert route.dependant.dependencies == [], (route.path, route.methods)


def test_an_api_key_check_resolves_only_the_bearer_scheme() -> None:
    check = require("challenge")
    login = next(r for r in _api_routes(challenges.router)
                 if r.path == "/v1/challenges" and "POST" in r.methods)
    key_checks = [d for d in login.dependant.dependencies if d.call.__name__ == check.__name__]
    assert len(key_checks) == 1
    assert [d.call for d in key_checks[0].dependencies] == [API_KEY]


def test_privacyidea_operations_document_the_correlation_header() -> None:
    for route in _api_routes(privacyidea.router):
        if not route.include_in_schema:
            continue
        params = (route.openapi_extra or {}).get("parameters", [])
        assert {"name": "x-correlation-id", "in": "header"}.items() <= params[0].items(), route.path
