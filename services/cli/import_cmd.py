"""``twofa import privacyidea|pskc FILE``: move tokens from another server into twofa.

Prints one line per record (where it is in the file, serial, type, what happened, the
owner, why) and a summary; a progress bar on stderr when that is a terminal. Exit status:
0 when nothing was refused, 1 when some records were, 2 (with a message, nothing written)
when the file as a whole cannot be read. Seeds, numbers and keys are never printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from services.core.plumbing.settings import Settings

BAR = 30


def register(sub: Any, settings: Callable[[], Settings]) -> None:
    cmd = sub.add_parser(
        "import", help="import tokens from privacyIDEA or a PSKC file (no re-enrollment)",
        description="Write each token of the file as an active twofa token of its owner, its "
                    "secrets encrypted with twofa's keys. Running it again changes nothing "
                    "(tokens already imported are skipped), which also resumes an interrupted "
                    "import. Owners map as in the privacyIDEA-compatible API: login@realm with "
                    "the realms of TWOFA_PI_REALMS.")
    formats = cmd.add_subparsers(dest="format", required=True, metavar="FORMAT")
    pi = formats.add_parser(
        "privacyidea",
        help="the file of pi-tokenjanitor find ... export --format pi (TOTP, SMS, PUSH)")
    pi.add_argument("file", type=Path, help="the export file")
    pi.add_argument("--key", required=True, help="the key pi-tokenjanitor printed for the file")
    pskc = formats.add_parser("pskc", help="an RFC 6030 PSKC file (TOTP keys; privacyIDEA's too)")
    pskc.add_argument("file", type=Path, help="the PSKC file")
    secret = pskc.add_mutually_exclusive_group()
    secret.add_argument("--psk", help="the pre-shared key (hex) the seeds are encrypted with; "
                                      "by default none (only seeds in the clear are read)")
    secret.add_argument("--password",
                        help="the password the seeds' key is derived from (PBKDF2); by default "
                             "none (only seeds in the clear are read)")
    pskc.add_argument("--assign", type=Path, required=True,
                      help="CSV of serial,user: who owns each key (PSKC files name no owner)")
    for parser in (pi, pskc):
        parser.add_argument("--dry-run", action="store_true",
                            help="check and report every record, write nothing")
    cmd.set_defaults(func=lambda args: run(args, settings))


def run(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    from services.core.imports import records as imports
    from services.core.imports.records import ImportFileError

    try:
        data = args.file.read_bytes()
        if args.format == "privacyidea":
            from services.core.imports import privacyidea_export

            found = privacyidea_export.read(data, args.key)
        else:
            from services.core.imports import pskc_file

            owners = pskc_file.read_assignments(args.assign.read_text(encoding="utf-8"))
            found = pskc_file.read(data, owners=owners, psk=args.psk, password=args.password)
    except OSError as exc:
        sys.exit(f"twofa: cannot read {exc.filename}: {exc.strerror}")
    except (ImportFileError, UnicodeDecodeError) as exc:
        sys.exit(f"twofa: {args.file}: {exc if isinstance(exc, ImportFileError) else 'not UTF-8'}; "
                 "nothing imported")

    from services.core.bootstrap import build_context
    from services.core.plumbing.messaging.outbox import RelayDispatcher

    ctx = build_context(settings(), background=False)
    ctx.dispatcher = RelayDispatcher()  # the relay publishes the events, as for every change
    progress = Progress(len(found), sys.stderr)
    try:
        summary = imports.import_records(ctx, found, args.format, dry_run=args.dry_run,
                                         progress=progress.step)
    finally:
        progress.done()
        ctx.engine.dispose()
    report(summary, dry_run=args.dry_run)
    return 1 if summary.count("refused") else 0


def report(summary: Any, *, dry_run: bool) -> None:
    from services.cli.table import print_table

    done = "would import" if dry_run else "imported"
    print_table(("AT", "SERIAL", "TYPE", "RESULT", "USER", "WHY"), [
        (o.position.replace(" ", "-"), o.serial or "-", o.type,
         done if o.status == "imported" else o.status, o.user_id or "-", o.reason)
        for o in summary.outcomes])
    parts = []
    for status, label in (("imported", done), ("skipped", "skipped"), ("refused", "refused")):
        types = ", ".join(f"{t} {n}" for t, n in summary.by_type(status).items())
        parts.append(f"{label} {summary.count(status)}" + (f" ({types})" if types else ""))
    print(("dry run, nothing written: " if dry_run else "") + "; ".join(parts))


class Progress:
    """A bar on a terminal; nothing when stderr is a file or a pipe."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.seen = total, out, 0
        self.on = out.isatty() and total > 0

    def step(self, _: object) -> None:
        self.seen += 1
        if self.on:
            filled = BAR * self.seen // self.total
            self.out.write(f"\r[{'#' * filled}{' ' * (BAR - filled)}] {self.seen}/{self.total}")
            self.out.flush()

    def done(self) -> None:
        if self.on:
            self.out.write("\n")
