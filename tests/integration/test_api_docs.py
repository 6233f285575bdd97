"""/docs and /redoc render with no internet: every script, style and icon they load is
served by the API itself. The OpenAPI document names the package's version and declares
the API-key (Bearer) scheme on every guarded operation, so Swagger UI's "Authorize" works."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest

from tests.integration.test_authorization_matrix import endpoints

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page, needs", [
    ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))])
def test_the_docs_pages_load_only_local_assets_and_each_answers(api, page, needs):
    r = api.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "://" not in html, "an absolute URL: a CDN or another host"
    assets = ASSET.findall(html)
    assert all(any(a.endswith(n) for a in assets) for n in needs), assets
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        got = api.get(asset)
        assert got.status_code == 200 and len(got.content) > 1000, asset
    assert "/openapi.json" in html


def test_the_openapi_document_has_the_package_version_and_the_bearer_scheme(api):
    doc = api.get("/openapi.json").json()
    assert doc["info"]["version"] == version("twofa")
    schemes = doc["components"]["securitySchemes"]
    assert list(schemes.values()) == [{"type": "http", "scheme": "bearer", "bearerFormat": "tfa_…",
                                       "description": schemes["apiKey"]["description"]}]
    for method, path, scope in endpoints(api.app):
        operation = doc["paths"].get(path, {}).get(method.lower())
        if operation is None:
            continue  # not in the schema (the docs pages themselves)
        if scope:
            assert operation.get("security") == [{"apiKey": []}], (method, path)
            assert not any(p["name"].lower() == "authorization" for p in operation.get("parameters", []))
        else:
            assert "security" not in operation, (method, path)


def test_the_scheme_name_is_case_insensitive_and_a_bare_scheme_is_refused(api, enroll_headers):
    key = enroll_headers["Authorization"].split(" ", 1)[1]
    assert api.get("/v1/users/alice/tokens", headers={"Authorization": f"bearer {key}"}).status_code == 200
    r = api.get("/v1/users/alice/tokens", headers={"Authorization": "Bearer "})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
