"""The API's /docs and /redoc render in a browser that can reach nothing but the API
(every other request is aborted): Swagger UI shows the title, the version and
"Authorize"; ReDoc shows the title. (Beside the portal's tests for their browser.)

The one request allowed to fail is an image: ReDoc's "API docs by Redocly" credit loads
its logo from Redocly's CDN and hides it when that fails. Scripts, styles, fonts and
data all come from the API."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def only_the_api(page: Any, api_url: str) -> list[tuple[str, str]]:
    blocked: list[tuple[str, str]] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(api_url + "/"):
            r.continue_()
        else:
            blocked.append((r.request.resource_type, r.request.url))
            r.abort()

    page.route("**/*", route)
    return blocked


def test_swagger_ui_and_redoc_render_with_no_internet(page, servers):
    api, _ = servers
    blocked = only_the_api(page, api.url)
    page.goto(f"{api.url}/docs")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for()
    assert "twofa" in title.inner_text() and version("twofa") in title.inner_text()
    assert page.get_by_role("button", name="Authorize").is_visible()
    page.goto(f"{api.url}/redoc")
    page.locator("h1", has_text="twofa").first.wait_for()
    assert [kind for kind, _ in blocked if kind != "image"] == [], blocked
