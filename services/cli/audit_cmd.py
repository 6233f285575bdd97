"""``twofa audit verify|export|checkpoint``: the auditor's and operator's commands.

``verify`` exits 0 when the chain is intact and 1 when it is not, printing the first
bad position; ``export`` writes JSON Lines to stdout or ``--output``, with a progress
bar on stderr only when stderr is a terminal (so pipes and logs stay clean).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from services.core.plumbing.settings import Settings


def register(sub: Any, settings: Callable[[], Settings]) -> None:
    audit = sub.add_parser("audit", help="verify, export and checkpoint the audit log")
    actions = audit.add_subparsers(dest="action", required=True)
    actions.add_parser("verify", help="recompute the chain; exit 1 if tampered")
    export = actions.add_parser("export", help="write the log as JSON Lines")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument("--output", "-o", default="-", help="a file, or - for stdout")
    actions.add_parser("checkpoint", help="sign the current head now (e.g. from cron)")
    audit.set_defaults(func=lambda args: run(args, settings()))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from services.core.plumbing.db import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    try:
        if args.action == "verify":
            return _verify(sessions, settings)
        if args.action == "checkpoint":
            return _checkpoint(sessions, settings)
        return _export(sessions, args.output)
    finally:
        engine.dispose()


def _verify(sessions: Any, settings: Settings) -> int:
    from services.core.audit.signing import signer_from_settings
    from services.core.audit.verify import verify_chain

    verifier = signer_from_settings(settings).verifier
    with sessions() as session:
        result = verify_chain(session, verifier)
    if result.ok:
        cp = f", signed checkpoint at {result.checkpoint_position}" if result.checkpoint_position else ""
        print(f"audit chain ok: {result.checked} rows{cp}")
        return 0
    print(f"audit chain TAMPERED at position {result.first_bad_position}: {result.problem}")
    print(f"first_bad_position={result.first_bad_position}")
    return 1


def _checkpoint(sessions: Any, settings: Settings) -> int:
    from services.core.audit import chain
    from services.core.audit.checkpoints import CheckpointPolicy, maybe_checkpoint
    from services.core.audit.signing import signer_from_settings
    from services.core.plumbing.clock import SystemClock

    signer = signer_from_settings(settings)
    with sessions.begin() as session:
        chain.lock_chain(session)
        cp = maybe_checkpoint(session, signer, SystemClock().now(), CheckpointPolicy(), force=True)
        where = cp.position if cp is not None else None
    print(f"signed checkpoint at {where}" if where else "nothing new to checkpoint")
    return 0


def _export(sessions: Any, output: str) -> int:
    from services.core.audit import query
    from services.core.audit.export import export_jsonl

    out: TextIO = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")
    try:
        with sessions() as session:
            bar = ProgressBar(query.count(session), sys.stderr) if sys.stderr.isatty() else None
            written = export_jsonl(session, out, progress=bar.update if bar else None)
        if bar:
            bar.close()
    finally:
        if out is not sys.stdout:
            out.close()
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
