"""The browser suite's world: the real API and the portal, each a uvicorn server in a
thread on a free port (the API on the test DB with the frozen clock, so oathtool codes
are deterministic), and Debian's Chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.api.app import create_app as create_api
from services.core import apikeys
from services.core.plumbing.context import Context
from services.core.plumbing.settings import Settings
from services.portal.accounts import AccountStore
from services.portal.app import create_app as create_portal
from services.portal.settings import PortalSettings
from tests.conftest import make_settings
from tests.e2e.stack import ROOT, free_port
from tests.integration.portal.conftest import FAST_HASHER
from tests.portal_support import PASSWORD

CHROMIUM = Path(os.environ.get("TWOFA_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts" / "portal"
LAUNCH_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-quic", "--disable-dev-shm-usage", "--disable-gpu"]

MISSING = None if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"


@pytest.fixture(autouse=True, scope="session")
def _chromium_is_there() -> None:
    """Without the browser: locally each browser test is skipped with the reason (shown by
    -ra); in CI each fails, since a green run must not have tested less (scripts/test and
    .ci/run install Chromium as root)."""
    if MISSING and os.environ.get("CI"):
        pytest.fail(f"{MISSING}; CI must run the browser tests", pytrace=False)
    if MISSING:
        pytest.skip(MISSING)


class ThreadedServer:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def api_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, api_port: int) -> Settings:
    # public_url: the push app answers the API it really talks to.
    return make_settings(tmp_path, database_url, public_url=f"http://127.0.0.1:{api_port}",
                         push_server_key_bits=2048)


@pytest.fixture
def servers(ctx: Context, api_port: int, tmp_path: Path) -> Iterator[tuple[ThreadedServer, ThreadedServer]]:
    with ctx.sessions.begin() as session:
        key = apikeys.create_key(session, "portal", ("enroll", "challenge"), ctx.clock.now()).plaintext
    accounts = AccountStore(f"sqlite:///{tmp_path / 'portal.db'}", FAST_HASHER)
    accounts.add("alice", PASSWORD)
    with ThreadedServer(create_api(ctx=ctx), api_port) as api:
        portal_settings = PortalSettings(env="test", api_url=api.url, api_key=key,
                                         secret_key="e2e-" * 10, var_dir=tmp_path / "portal")
        with ThreadedServer(create_portal(portal_settings, accounts=accounts), free_port()) as portal:
            yield api, portal
    accounts.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A phone-sized page (the portal must be readable there) that accepts downloads."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    # What the CSP blocked (4xx pages are expected: a wrong code is a 422 page).
    pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.csp_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def shot(page: Any) -> Callable[[str], None]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take
