"""``twofa pi-account create|list|revoke``: the service accounts privacyIDEA plugins log in
with (``POST /auth``) before they call ``/validate/triggerchallenge``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from services.core.plumbing.settings import Settings


def register(sub: Any, settings: Callable[[], Settings]) -> None:
    account = sub.add_parser(
        "pi-account", help="service accounts of the privacyIDEA-compatible API"
    )
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="make an account; prints its password alone on the last line"
    )
    create.add_argument("--name", required=True, help="1-64 letters, digits or dots")
    actions.add_parser("list", help="every account: name, state, creation date")
    revoke = actions.add_parser("revoke", help="revoke an account (its sign-ins stop working)")
    revoke.add_argument("name", help="the account's name, as pi-account list shows it")
    account.set_defaults(func=lambda args: run(args, settings))


def run(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    from services.core.plumbing.clock import SystemClock
    from services.core.plumbing.db import make_engine, make_session_factory
    from services.core.privacyidea import accounts

    engine = make_engine(settings().resolved_database_url)
    now = SystemClock().now()
    try:
        with make_session_factory(engine).begin() as session:
            if args.action == "create":
                try:
                    created = accounts.create(session, args.name, now)
                except accounts.InvalidUsername as exc:
                    sys.exit(f"twofa: {exc}")
                print(f"created service account {created.username} (role admin)")
                print(created.password)  # alone on the last line, for scripts
            elif args.action == "list":
                from services.cli.table import print_table

                rows = [(a.username, "revoked" if a.revoked_at else "active",
                         f"{a.created_at:%Y-%m-%d}") for a in accounts.list_accounts(session)]
                print_table(("NAME", "STATE", "CREATED"), rows)
            elif not accounts.revoke(session, args.name, now):
                sys.exit(f"twofa: no active service account {args.name}")
            else:
                print(f"revoked {args.name}")
    finally:
        engine.dispose()
    return 0
