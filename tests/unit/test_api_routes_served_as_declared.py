"""The app serves the routes its routers declared, and documents the error shape by reference.

An included router is served through copies of its routes, built at the first request and
kept beside the originals; a model named in a route's responses gets a serializer per route
and status that only the OpenAPI document reads. Both would stay in every API process's
memory for its lifetime.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match, Mount, Route

from services.api.app import ROUTERS, create_app
from services.api.errors import ERROR_RESPONSES
from services.api.privacyidea import routes as privacyidea
from services.api.routes import challenges, sms, ttype_push
from services.core.bootstrap import build_context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings


def _app(tmp_path: Path) -> FastAPI:
    settings = Settings(env="test", var_dir=tmp_path / "var",
                        database_url=f"sqlite:///{tmp_path / 'twofa.db'}",
                        encryption_keys=Fernet.generate_key().decode())
    ctx = build_context(settings, publisher=RecordingPublisher(), background=False)
    ctx.engine.dispose()
    return create_app(ctx=ctx)


def test_the_app_serves_each_declared_route_itself(tmp_path: Path) -> None:
    app = _app(tmp_path)
    declared = [route for router in ROUTERS for route in router.routes]
    served = [route for route in app.routes if isinstance(route, APIRoute)]
    assert served[:len(declared)] == declared  # the same objects, in the routers' order
    assert all(isinstance(route, (Route, Mount)) for route in app.routes)  # no included routers


def test_the_routes_document_their_error_shapes_without_a_model(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path)
    documented = app.openapi()
    assert {"ErrorOut", "ErrorBody"} <= set(documented["components"]["schemas"])
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert not route.response_fields  # no error serializers (privacyIDEA's too)
            if router is privacyidea.router or not route.include_in_schema:
                continue
            assert set(ERROR_RESPONSES) <= set(route.responses)
            for method in route.methods:
                answers = documented["paths"][route.path][method.lower()]["responses"]
                for status, declared in ERROR_RESPONSES.items():
                    if route.responses[status] is declared:  # not the route's own answer
                        schema = answers[str(status)]["content"]["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/ErrorOut"}


def _request_for(route: APIRoute, method: str) -> dict[str, object]:
    """A request on ``route``'s path, its parameters filled in."""
    path = re.sub(r"\{prefix:path\}", "some/prefix", route.path)
    path = re.sub(r"\{[^}]+\}", "0f8c6a51-54a8-4bd2-9c2b-3c8a4f5e0d11", path)
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_no_two_routes_take_the_same_request(tmp_path: Path) -> None:
    """So the order the app tries its routes in, which puts the login paths first,
    decides nothing but how soon a request finds its route."""
    app = _app(tmp_path)
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    for route in routes:
        for method in route.methods:
            scope = _request_for(route, method)
            taking = [r for r in routes if r.matches(scope)[0] == Match.FULL]
            assert taking == [route], (method, route.path, [r.path for r in taking])


def test_a_login_request_finds_its_route_among_the_first_tried(tmp_path: Path) -> None:
    app = _app(tmp_path)
    login_routers = (challenges.router, privacyidea.router, ttype_push.router,
                     sms.challenge_router)
    before_the_rest = sum(len(router.routes) for router in login_routers)
    for method, path in (("POST", "/v1/challenges"), ("POST", "/validate/check"),
                         ("POST", "/v1/challenges/0f8c6a51-54a8-4bd2-9c2b-3c8a4f5e0d11/verify"),
                         ("POST", "/ttype/push")):
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        tried = next(i for i, route in enumerate(app.routes, 1)
                     if route.matches(scope)[0] == Match.FULL)
        assert tried <= before_the_rest, (path, tried)
