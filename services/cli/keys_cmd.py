"""``twofa keys rotate``: re-encrypt every secret under the newest encryption key.

``twofa keys new-audit-key`` prints a fresh Ed25519 key for ``TWOFA_AUDIT_SIGNING_KEY``;
``twofa keys audit-public-key`` prints the public half (PEM) of the configured one, which
is all an auditor needs (``twofa audit verify --public-key FILE``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from services.core.plumbing.settings import Settings


def register(sub: Any, settings: Callable[[], Settings]) -> None:
    keys = sub.add_parser("keys", help="encryption and signing keys")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = actions.add_parser("rotate", help="re-encrypt every *_enc column under the first key")
    rotate.add_argument("--batch-size", type=int, default=500,
                        help="rows re-encrypted per transaction")
    actions.add_parser("new-audit-key", help="print a new base64 Ed25519 audit signing key")
    actions.add_parser("audit-public-key", help="print the audit public key (PEM) for auditors")
    keys.set_defaults(func=lambda args: run(args, settings))


def run(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    if args.action == "new-audit-key":
        from services.core.audit.signing import generate_key_b64

        print(generate_key_b64())
        return 0
    if args.action == "audit-public-key":
        from services.core.audit.signing import SigningKeyError, signer_from_settings

        try:  # never creates a key: one made here would not be the service's
            signer = signer_from_settings(settings(), create=False)
        except SigningKeyError as exc:
            print(f"twofa keys audit-public-key: {exc}", file=sys.stderr)
            return 2
        print(signer.verifier.public_pem(), end="")
        return 0
    from services.core.plumbing.crypto import keyring_from_settings
    from services.core.plumbing.db import make_engine, make_session_factory
    from services.core.plumbing.key_rotation import rotate_all

    s = settings()
    engine = make_engine(s.resolved_database_url)
    try:
        report = rotate_all(
            make_session_factory(engine), keyring_from_settings(s), max(1, args.batch_size)
        )
    finally:
        engine.dispose()
    for name, n in report.rotated.items():
        print(f"{name}\t{n} re-encrypted")
    for name, n in report.failed.items():
        print(f"{name}\t{n} FAILED: no configured key decrypts them")
    print(
        f"rotated {report.total} secrets under the newest key ({report.skipped} changed meanwhile)"
    )
    return 1 if report.failed else 0
