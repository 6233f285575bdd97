"""``twofa portal …``: the reference portal's accounts and server, and its place in ``twofa dev``.

* ``twofa portal adduser NAME`` — a demo account (argon2id) in the portal's own database;
  the password is prompted twice on a terminal or read from the first line of stdin.
* ``twofa portal serve`` — the portal alone (uvicorn), configured by ``TWOFA_PORTAL_*``.
* ``dev_env`` — for ``twofa dev``: an API key for the portal (scopes enroll, challenge),
  created once and kept in ``var/portal/api-key`` (mode 0600), and the portal's variables.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from services.core.plumbing.settings import Settings

PORTAL_SCOPES = ("enroll", "challenge")


def cmd_adduser(args: argparse.Namespace) -> int:
    from services.portal.accounts import AccountError, AccountStore
    from services.portal.settings import PortalSettings

    settings = PortalSettings()
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            sys.exit("twofa: the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    store = AccountStore(settings.resolved_database_url)
    try:
        store.add(args.name, password)
    except AccountError as exc:
        sys.exit(f"twofa: {exc}")
    finally:
        store.close()
    print(f"portal account {args.name} created")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run("services.portal.asgi:app", host=args.host, port=args.port, access_log=False,
                log_level=os.environ.get("TWOFA_LOG_LEVEL", "info").lower())
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    portal = sub.add_parser("portal", help="the reference self-service portal")
    actions = portal.add_subparsers(dest="action", required=True)
    add = actions.add_parser("adduser", help="create a demo portal account")
    add.add_argument("name")
    add.set_defaults(func=cmd_adduser)
    serve = actions.add_parser("serve", help="serve the portal (at TWOFA_PORTAL_BASE_PATH, /portal)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.set_defaults(func=cmd_serve)


def _dev_key(settings: Settings) -> str:
    """The portal's dev API key: reused while it is valid, else a new one."""
    from services.core import apikeys
    from services.core.plumbing.clock import SystemClock
    from services.core.plumbing.db import make_engine, make_session_factory

    path: Path = settings.var_dir.resolve() / "portal" / "api-key"
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    try:
        if path.exists():
            kept = path.read_text().strip()
            with sessions() as session:
                if apikeys.authenticate(session, kept) is not None:
                    return kept
        with sessions.begin() as session:
            key = apikeys.create_key(session, "portal (twofa dev)", PORTAL_SCOPES, SystemClock().now()).plaintext
    finally:
        engine.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def base_path() -> str:
    """Where the portal's pages are (``TWOFA_PORTAL_BASE_PATH``, default ``/portal``)."""
    from services.portal.settings import PortalSettings

    return PortalSettings().base_path


def sign_in_path() -> str:
    return base_path() + "/login"


def dev_env(settings: Settings, api_url: str) -> dict[str, str]:
    """Variables for the portal child of ``twofa dev`` (after the migration ran)."""
    return {
        "TWOFA_PORTAL_API_URL": api_url,
        "TWOFA_PORTAL_API_KEY": _dev_key(settings),
        "TWOFA_PORTAL_DATABASE_URL": os.environ.get(
            "TWOFA_PORTAL_DATABASE_URL", f"sqlite:///{(settings.var_dir / 'portal.db').resolve()}"),
    }
