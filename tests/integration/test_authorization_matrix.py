"""Every route of the app × every kind of caller: who gets 401, who gets 403, who gets in.

Routes come from ``app.routes``, so a route added later is covered without editing
this file; its required scope is read from its ``require(...)`` dependency. A route
that is neither listed as public nor guarded by a scope fails the test.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.core import apikeys

# Reachable without an API key (the push app and Twilio sign their requests instead).
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/ttype/push",
    "/{prefix:path}/ttype/push",  # the same endpoint behind a path prefix (see ttype_push.py)
    "/v1/callbacks/twilio",
    "/v1/callbacks/vonage",
    # the privacyIDEA-compatible API: anonymous as in privacyIDEA (plugins send no credentials)
    "/validate/check",
    "/validate/polltransaction",
    "/validate/polltransaction/{transaction_id}",
    "/v1/audit/public-key",  # a public key, published for outside auditors
}
# Routes with credentials of their own, which no API key replaces: every caller here gets 401.
OWN_CREDENTIALS = {
    "/validate/triggerchallenge",  # the service-account JWT of POST /auth
    "/auth",  # a service account's username and password
}
CALLERS = ("none", "bad", "revoked", "challenge", "enroll", "audit:read", "admin")
SKIP_METHODS = {"HEAD", "OPTIONS"}


def required_scope(route: APIRoute) -> frozenset[str] | None:
    """The scopes named by the route's ``require_<scope>[__<scope>…]`` dependency, if any."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        name = getattr(dep.call, "__name__", "")
        if name.startswith("require_"):
            names = name.removeprefix("require_").split("__")
            return frozenset(n.replace("_", ":") for n in names)
        stack.extend(dep.dependencies)
    return None


def concrete(path: str) -> str:
    """A plausible URL for a path template: ids are random UUIDs, users and areas valid names."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.endswith("_id") and name != "user_id":
            return str(uuid.uuid4())
        return {"user_id": "alice", "area": "sso"}.get(name, "x")

    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", fill, path)


def flat_routes(app):  # type: ignore[no-untyped-def]
    """``app.routes`` with included routers expanded (FastAPI ≥ 0.16x includes them lazily)."""
    try:
        from fastapi.routing import _iter_included_route_candidates
    except ImportError:  # older FastAPI: app.routes is already flat
        return list(app.routes)
    return list(_iter_included_route_candidates(app.routes))


def endpoints(app) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    """(method, path template, required scope or None) for every route of ``app``."""
    out = []
    for route in flat_routes(app):
        methods = sorted(set(getattr(route, "methods", None) or ()) - SKIP_METHODS)
        for method in methods:
            scope = required_scope(route) if isinstance(route, APIRoute) else None
            out.append((method, route.path, scope))
    return out


def test_every_route_is_public_or_guarded_by_a_known_scope(client):
    found = endpoints(client.app)
    unguarded = [(m, p) for m, p, scope in found if scope is None and p not in PUBLIC | OWN_CREDENTIALS]
    assert unguarded == []
    assert set().union(*(scope for _, _, scope in found if scope)) <= set(apikeys.SCOPES)
    assert len([e for e in found if e[2]]) >= 10  # the matrix is not vacuous


@pytest.fixture
def keys(ctx):
    made: dict[str, dict[str, str]] = {"none": {}, "bad": {"Authorization": "Bearer tfa_nokey_notasecret"}}
    with ctx.sessions.begin() as session:
        for scope in apikeys.SCOPES:
            made[scope] = {"Authorization": f"Bearer {apikeys.create_key(session, scope, (scope,), ctx.clock.now()).plaintext}"}
        revoked = apikeys.create_key(session, "old", ("admin",), ctx.clock.now())
    with ctx.sessions.begin() as session:
        apikeys.revoke_key(session, revoked.id, ctx.clock.now())
    made["revoked"] = {"Authorization": f"Bearer {revoked.plaintext}"}
    return made


@pytest.fixture
def client(ctx):
    with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as c:
        yield c


def expected(caller: str, scope: frozenset[str] | None, path: str = "") -> str:
    if path in OWN_CREDENTIALS:
        return "401 own"
    if scope is None:
        return "in"
    if caller in ("none", "bad", "revoked"):
        return "401"
    if caller in scope or caller == "admin":
        return "in"
    return "403"


def test_authorization_matrix(client, keys):
    problems, checked = [], 0
    for method, path, scope in endpoints(client.app):
        url = concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH", "DELETE") else None
        for caller in CALLERS:
            r = client.request(method, url, headers=keys[caller], json=body)
            checked += 1
            problem = judge(r, expected(caller, scope, path))
            if problem:
                problems.append(f"{caller:10} {method} {url} -> {r.status_code}: {problem}")
    assert problems == []
    assert checked >= 10 * len(CALLERS)


def judge(r, want: str) -> str | None:  # type: ignore[no-untyped-def]
    got = r.status_code
    if got >= 500:
        return "server error"
    if want == "401 own":
        return None if got == 401 else "expected 401: an API key is not this route's credential"
    if want == "401":
        if got != 401 or r.headers.get("WWW-Authenticate") != "Bearer":
            return "expected 401 with WWW-Authenticate: Bearer"
    elif want == "403":
        if got != 403 or "scope" not in r.json()["error"]["message"]:
            return "expected 403 for the missing scope"
    elif got == 401 or (got == 403 and "scope" in r.json()["error"]["message"]):
        # a 403 here may only be a domain refusal (a step-up code), never the scope check
        return "the right scope was refused"
    return None
