"""``twofa audit verify|export|checkpoint``: the auditor's and operator's commands.

``verify`` exits 0 when the chain is intact, 1 when it is not (printing the first bad
position) and 2 when it cannot check (no public key, an unreadable or forged checkpoint
file). It needs only the database and the public key: ``--public-key FILE``, or the one
the service publishes at ``TWOFA_PUBLIC_URL/v1/audit/public-key`` (``--public-key-url``);
it never reads or creates a signing key, so it can run anywhere. ``--checkpoints FILE``
adds checkpoints kept outside the database (JSON Lines, as ``audit checkpoints`` writes
them or as the ``audit.checkpoint_signed`` webhooks deliver them).

``export`` writes JSON Lines to stdout or ``--output``, with a progress bar on stderr only
when stderr is a terminal (so pipes and logs stay clean).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from services.core.plumbing.settings import Settings


def register(sub: Any, settings: Callable[[], Settings]) -> None:
    audit = sub.add_parser("audit", help="verify, export and checkpoint the audit log")
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="recompute the chain; exit 1 if tampered")
    key = verify.add_mutually_exclusive_group()
    key.add_argument("--public-key", metavar="FILE",
                     help="the audit public key (PEM or base64; "
                          "default: fetched, see --public-key-url)")
    key.add_argument("--public-key-url", metavar="URL",
                     help="fetch the published key (default: TWOFA_PUBLIC_URL/v1/audit/public-key)")
    verify.add_argument("--checkpoints", metavar="FILE",
                        help="signed checkpoints kept outside the database (JSON Lines; "
                             "default: only those in the database)")
    cps = actions.add_parser("checkpoints", help="write the signed checkpoints as JSON Lines")
    cps.add_argument("--output", "-o", default="-", help="a file, or - for stdout")
    export = actions.add_parser("export", help="write the log as JSON Lines")
    export.add_argument("--format", choices=["jsonl"], default="jsonl",
                        help="output format: one JSON object a line")
    export.add_argument("--output", "-o", default="-", help="a file, or - for stdout")
    actions.add_parser("checkpoint", help="sign the current head now (e.g. from cron)")
    audit.set_defaults(func=lambda args: run(args, settings()))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from services.core.plumbing.db import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    try:
        if args.action == "verify":
            return _verify(sessions, settings, args)
        if args.action == "checkpoint":
            return _checkpoint(sessions, settings)
        if args.action == "checkpoints":
            return _checkpoints(sessions, args.output)
        return _export(sessions, args.output)
    finally:
        engine.dispose()


def _verify(sessions: Any, settings: Settings, args: argparse.Namespace) -> int:
    from services.core.audit.external import CheckpointFileError, load_public_key, read_checkpoints
    from services.core.audit.signing import SigningKeyError
    from services.core.audit.verify import verify_chain

    url = args.public_key_url or settings.public_url.rstrip("/") + "/v1/audit/public-key"
    try:
        verifier = load_public_key(file=args.public_key, url=None if args.public_key else url)
        external = read_checkpoints(args.checkpoints, verifier) if args.checkpoints else []
    except (SigningKeyError, CheckpointFileError) as exc:
        print(f"twofa audit verify: {exc}", file=sys.stderr)
        return 2
    with sessions() as session:
        result = verify_chain(session, verifier, external)
    print(f"public key {verifier.key_id}")
    if result.ok:
        cp = (
            f", signed checkpoint at {result.checkpoint_position}"
            if result.checkpoint_position
            else ""
        )
        outside = f", {len(external)} checkpoints from {args.checkpoints}" if external else ""
        print(f"audit chain ok: {result.checked} rows{cp}{outside}")
        return 0
    print(f"audit chain TAMPERED at position {result.first_bad_position}: {result.problem}")
    print(f"first_bad_position={result.first_bad_position}")
    return 1


def _checkpoint(sessions: Any, settings: Settings) -> int:
    from services.core.audit import chain
    from services.core.audit.checkpoints import CheckpointPolicy, maybe_checkpoint
    from services.core.audit.signing import SigningKeyError, signer_from_settings
    from services.core.plumbing.clock import SystemClock

    try:
        signer = signer_from_settings(settings, create=False)
    except SigningKeyError as exc:
        print(f"twofa audit checkpoint: {exc}", file=sys.stderr)
        return 2
    with sessions.begin() as session:
        chain.lock_chain(session)
        cp = maybe_checkpoint(session, signer, SystemClock().now(), CheckpointPolicy(), force=True)
        where = cp.position if cp is not None else None
    print(f"signed checkpoint at {where}" if where else "nothing new to checkpoint")
    return 0


@contextlib.contextmanager
def _opened(output: str) -> Iterator[TextIO]:
    """Standard output for ``-``, otherwise the named file, closed afterwards."""
    if output == "-":
        yield sys.stdout
        return
    with open(output, "w", encoding="utf-8") as fh:
        yield fh


def _checkpoints(sessions: Any, output: str) -> int:
    from services.core.audit.external import write_checkpoints

    with _opened(output) as out, sessions() as session:
        written = write_checkpoints(session, out)
    print(f"wrote {written} checkpoints", file=sys.stderr)
    return 0


def _export(sessions: Any, output: str) -> int:
    from services.core.audit import query
    from services.core.audit.export import export_jsonl

    with _opened(output) as out:
        with sessions() as session:
            bar = ProgressBar(query.count(session), sys.stderr) if sys.stderr.isatty() else None
            written = export_jsonl(session, out, progress=bar.update if bar else None)
        if bar:
            bar.close()
    print(f"exported {written} rows", file=sys.stderr)
    return 0


class ProgressBar:
    """A one-line ``[#####     ] 1200/5000`` bar on a terminal; a few lines, no dependency."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = max(total, 1), stream

    def update(self, done: int) -> None:
        filled = min(self.WIDTH, self.WIDTH * done // self.total)
        self.stream.write(f"\r[{'#' * filled}{' ' * (self.WIDTH - filled)}] {done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
