"""Web hygiene: CSRF refusal, the redirect allow-list, cookies, headers, labels."""

from __future__ import annotations

import re

import pytest

from services.portal.web import safe_next
from tests.integration.portal.conftest import PortalWorld


def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(world: PortalWorld):
    world.csrf("/portal/login")  # a session exists
    r = world.browser.post("/portal/login", data={"username": "alice", "password": "correct horse battery"})
    assert r.status_code == 403 and "expired" in r.text
    r = world.browser.post("/portal/login", data={"username": "alice", "password": "correct horse battery",
                                                  "csrf_token": "forged"})
    assert r.status_code == 403
    assert world.browser.get("/portal/security").status_code == 303  # still signed out

    world.login()
    for path, data in [("/portal/security/enroll", {"type": "totp", "description": "x"}),
                       ("/portal/security/areas", {"area": "portal-security"}),
                       ("/portal/recovery", {"recovery_token": "0" * 32}),
                       ("/portal/logout", {})]:
        r = world.browser.post(path, data=data)
        assert r.status_code == 403, path
    assert world.api.get("/v1/users/alice/tokens").json()["tokens"] == []
    assert not any(a["protected"] for a in world.api.get("/v1/users/alice/areas").json()["areas"])
    assert world.browser.get("/portal/security").status_code == 200  # logout was refused too


def test_a_token_from_another_session_is_refused(world: PortalWorld):
    stolen = world.csrf("/portal/login")
    world.browser.cookies.clear()
    r = world.browser.post("/portal/login", data={"username": "alice", "password": "correct horse battery",
                                                  "csrf_token": stolen})
    assert r.status_code == 403


@pytest.mark.parametrize("target, expected", [
    ("/portal/security/enroll", "/portal/security/enroll"),
    ("/portal/recovery", "/portal/recovery"),
    ("https://evil.example/portal/security", "/portal/security"),
    ("//evil.example/portal/security", "/portal/security"),
    ("/\\evil.example", "/portal/security"),
    ("/portal/../admin", "/portal/security"),
    ("/portal/security?x=https://evil.example", "/portal/security"),
    ("/portal%2F%2Fevil.example", "/portal/security"),
    ("/portalx/steal", "/portal/security"),
    ("/v1/users/alice/tokens", "/portal/security"),
    ("javascript:alert(1)", "/portal/security"),
    ("", "/portal/security"),
])
def test_after_login_only_this_portals_own_paths_are_redirect_targets(world: PortalWorld, target, expected):
    assert safe_next(target, "/portal", "/portal/security") == expected
    r = world.login(next=target)
    assert r.status_code == 303 and r.headers["location"] == expected


def test_the_login_form_carries_a_safe_next_only(world: PortalWorld):
    r = world.browser.get("/portal/login", params={"next": "https://evil.example/"})
    assert 'name="next" value="/portal/security"' in r.text


def test_cookies_headers_and_labels(world: PortalWorld):
    r = world.browser.get("/portal/login")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/portal" in cookie
    assert "secure" not in cookie  # plain http in tests; outside dev the cookie is Secure
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    world.login()
    for path in ("/portal/login", "/portal/security", "/portal/security/enroll", "/portal/recovery"):
        html = world.browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), f"inline script on {path}"
        assert not re.search(r"<[^>]+ on[a-z]+=", html), f"inline handler on {path}"
        ids = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*id="([^"]+)"', html)
        inputs = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*>', html)
        assert len(ids) == len(inputs), f"an input without an id on {path}"
        for i in ids:
            assert f'for="{i}"' in html, f"no label for #{i} on {path}"
        assert 'name="viewport"' in html


def test_secure_cookies_outside_dev():
    from services.portal.settings import PortalSettings

    prod = PortalSettings(env="production", secret_key="k" * 40, api_key="key")
    assert prod.cookie_secure is True
    with pytest.raises(ValueError, match="TWOFA_PORTAL_SECRET_KEY"):
        PortalSettings(env="production", api_key="key")
