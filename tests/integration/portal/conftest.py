"""The portal on an in-process API: the portal's HTTP client is a TestClient of the
real API app (same code, no socket), on the test DB with the frozen clock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from services.api.app import create_app as create_api
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.portal.accounts import AccountStore
from services.portal.apiclient import TwofaClient
from services.portal.app import create_app as create_portal
from services.portal.settings import PortalSettings
from tests.portal_support import PASSWORD

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class PortalWorld:
    browser: TestClient
    api: TestClient
    accounts: AccountStore
    clock: FrozenClock
    ctx: Context

    def csrf(self, path: str) -> str:
        r = self.browser.get(path)
        assert r.status_code == 200, r.text
        match = CSRF_RE.search(r.text)
        assert match, f"no CSRF field on {path}"
        return match.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, *, form_page: str | None = None,
             **kw: Any) -> httpx.Response:
        token = self.csrf(form_page or path)
        return self.browser.post(path, data={"csrf_token": token, **(data or {})}, **kw)

    def login(self, user: str = "alice", password: str = PASSWORD, next: str | None = None) -> httpx.Response:
        data = {"username": user, "password": password}
        if next is not None:
            data["next"] = next
        return self.post("/portal/login", data, form_page="/portal/login")


@pytest.fixture
def portal_settings(tmp_path: Path) -> PortalSettings:
    return PortalSettings(env="test", var_dir=tmp_path / "portal", api_url="http://testserver",
                          database_url=f"sqlite:///{tmp_path / 'portal.db'}",
                          secret_key="s" * 40, push_wait_seconds=1)


@pytest.fixture
def world(ctx: Context, clock: FrozenClock, make_key: Callable[..., str],
          portal_settings: PortalSettings) -> Iterator[PortalWorld]:
    key = make_key("enroll", "challenge")
    accounts = AccountStore(portal_settings.resolved_database_url, FAST_HASHER)
    accounts.add("alice", PASSWORD)
    with TestClient(create_api(ctx=ctx), headers={"Authorization": f"Bearer {key}"}) as api:
        portal = create_portal(portal_settings, TwofaClient(api), accounts)
        with TestClient(portal, follow_redirects=False) as browser:
            yield PortalWorld(browser, api, accounts, clock, ctx)
    accounts.close()
