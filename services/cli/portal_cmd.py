"""``twofa portal …``: the reference portal's accounts and server, and its place in ``twofa dev``.

* ``twofa portal adduser NAME`` — a demo account (argon2id) in the portal's own database;
  the password is prompted twice on a terminal or read from the first line of stdin.
  ``users``, ``passwd NAME`` (the password read the same way) and ``deluser NAME`` list,
  re-password and remove accounts.
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
from typing import TYPE_CHECKING

from services.core.plumbing.settings import Settings

if TYPE_CHECKING:
    from services.portal.accounts import AccountStore

PORTAL_SCOPES = ("enroll", "challenge")


def _read_password(name: str) -> str:
    """Asked twice on a terminal; otherwise the first line of stdin (for scripts)."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            sys.exit("twofa: the passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _accounts() -> AccountStore:
    from services.cli.main import make_private
    from services.portal.accounts import AccountStore
    from services.portal.settings import PortalSettings

    settings = PortalSettings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    make_private(settings.var_dir)
    return AccountStore(settings.resolved_database_url)


def cmd_adduser(args: argparse.Namespace) -> int:
    from services.portal.accounts import AccountError

    password = _read_password(args.name)
    store = _accounts()
    try:
        store.add(args.name, password)
    except AccountError as exc:
        sys.exit(f"twofa: {exc}")
    finally:
        store.close()
    print(f"portal account {args.name} created")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    from services.portal.accounts import AccountError

    store = _accounts()
    try:
        if args.name not in store.names():  # before asking for a password to throw away
            sys.exit(f"twofa: there is no portal account {args.name!r}")
        store.set_password(args.name, _read_password(args.name))
    except AccountError as exc:
        sys.exit(f"twofa: {exc}")
    finally:
        store.close()
    print(f"password of portal account {args.name} changed")
    return 0


def cmd_deluser(args: argparse.Namespace) -> int:
    store = _accounts()
    try:
        if not store.remove(args.name):
            sys.exit(f"twofa: there is no portal account {args.name!r}")
    finally:
        store.close()
    print(f"portal account {args.name} removed (its tokens in twofa are kept)")
    return 0


def cmd_users(_: argparse.Namespace) -> int:
    from services.cli.table import print_table

    store = _accounts()
    try:
        rows = [(a.name, f"{a.created_at:%Y-%m-%d %H:%M}") for a in store.accounts()]
        print_table(("NAME", "CREATED"), rows)
    finally:
        store.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run("services.portal.asgi:app", host=args.host, port=args.port, access_log=False,
                log_level=os.environ.get("TWOFA_LOG_LEVEL", "info").lower())
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    portal = sub.add_parser("portal",
                            help="the reference self-service portal: its accounts and server")
    actions = portal.add_subparsers(dest="action", required=True, metavar="ACTION")
    reading = ("The password is asked twice when standard input is a terminal; otherwise the "
               "first line of standard input is read, e.g. "
               "printf '%%s\\n' \"$PW\" | twofa portal %s NAME. "
               "At least 8 characters.")
    add = actions.add_parser("adduser", help="create a demo portal account",
                             description="Create an account of the portal's demo sign-in "
                                         "(argon2id hash in TWOFA_PORTAL_DATABASE_URL, default "
                                         "var/portal.db). " + reading % "adduser")
    add.add_argument("name", help="the account name, which is also the user's id in twofa")
    add.set_defaults(func=cmd_adduser)
    passwd = actions.add_parser("passwd", help="set a new password for a portal account",
                                description="Set a new password. " + reading % "passwd"
                                + " Sessions signed in before keep running until they expire.")
    passwd.add_argument("name", help="the account name")
    passwd.set_defaults(func=cmd_passwd)
    deluser = actions.add_parser("deluser", help="remove a portal account",
                                 description="Remove the account from the portal's database. The "
                                             "user's tokens and areas in twofa are not touched; "
                                             "sessions signed in before keep running until "
                                             "they expire.")
    deluser.add_argument("name", help="the account name")
    deluser.set_defaults(func=cmd_deluser)
    actions.add_parser("users", help="list the portal accounts").set_defaults(func=cmd_users)
    serve = actions.add_parser("serve",
                               help="serve the portal (at TWOFA_PORTAL_BASE_PATH, /portal)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8001, help="port to listen on")
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
            created = apikeys.create_key(
                session, "portal (twofa dev)", PORTAL_SCOPES, SystemClock().now()
            )
            key = created.plaintext
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
            "TWOFA_PORTAL_DATABASE_URL", f"sqlite:///{(settings.var_dir / 'portal.db').resolve()}"
        ),
    }
