"""The ``twofa`` command: one entry point for every process and admin task."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.core.plumbing.settings import Settings


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"twofa: configuration refused:\n{_explain(exc)}")
    make_private(settings.var_dir)
    return settings


def make_private(var_dir: Path) -> None:
    """Files an older twofa left readable by others under var/ become private on start."""
    from services.core.plumbing.private_files import tighten

    changed = tighten(var_dir)
    if changed:
        print(f"twofa: made {len(changed)} path(s) under {var_dir} private (0700/0600)",
              file=sys.stderr)


def _explain(exc: ValidationError) -> str:
    return "\n".join(f"  - {e['msg']}" for e in exc.errors())


def _logging(settings: Settings) -> None:
    from services.core.plumbing import logs

    logs.configure(settings)


def _metrics_multiprocess(settings: Settings) -> None:
    """Several processes will serve one metrics port: each writes its values to files in one
    directory (emptied first: a previous run's counts must not be summed in), named in the
    environment before any of them imports prometheus_client."""
    import tempfile
    from pathlib import Path

    path = settings.metrics_dir or Path(tempfile.mkdtemp(prefix="twofa-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def _serve_metrics(settings: Settings, args: argparse.Namespace) -> None:
    if args.metrics_port is None:
        return
    from services.core.plumbing import metrics

    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    extra = []
    if args.command == "relay":
        from services.core.plumbing.state_metrics import StateCollector

        extra.append(StateCollector(settings))
    metrics.serve(args.metrics_host, args.metrics_port, metrics.registry(extra), token)


def _metrics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics on this port (/metrics); "
                        "by default none are served")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the metrics port listens on (0.0.0.0 in a container)")


def cmd_dev(args: argparse.Namespace) -> int:
    from services.cli.launcher import run_dev

    if args.no_portal and args.portal_port is not None:
        sys.exit("twofa: --portal-port and --no-portal exclude each other")
    portal_port = None if args.no_portal else (args.portal_port or args.port + 1)
    if portal_port == args.port:
        sys.exit("twofa: --portal-port must differ from --port")
    return run_dev(_settings(), host=args.host, port=args.port, portal_port=portal_port)


def cmd_serve(args: argparse.Namespace) -> int:
    from services.cli import serve

    settings = _settings()
    _logging(settings)
    if args.workers > 1:
        _metrics_multiprocess(settings)
        if settings.resolved_database_url.startswith("sqlite"):
            logging.getLogger("twofa.serve").warning(
                "%d API processes on SQLite: they all queue for its one writer lock; one process "
                "needs less CPU per login (docs/operations.md, Scaling)", args.workers)
    serve.run(args.host, args.port, args.workers, settings.log_level.lower())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from services.workers.app import configure

    settings = _settings()
    _logging(settings)
    if args.quiet:
        from celery.exceptions import SecurityWarning

        # Celery warns in every worker process run as root; twofa dev says it once.
        warnings.filterwarnings("ignore", category=SecurityWarning)
    if args.pool == "prefork" and args.metrics_port is not None:
        _metrics_multiprocess(settings)
    queues = args.queues
    app = configure(settings, queues=tuple(q.strip() for q in queues.split(",")))
    _serve_metrics(settings, args)
    argv = ["--quiet"] if args.quiet else []
    argv += ["worker", "--queues", queues, "--loglevel", settings.log_level, "--hostname",
            f"{queues.replace(',', '+')}@%h", "--concurrency", str(args.concurrency),
            "--pool", args.pool, "--without-gossip", "--without-mingle"]
    app.worker_main(argv)
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    from services.workers import relay

    settings = _settings()
    _logging(settings)
    _serve_metrics(settings, args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    relay.run(settings, stop)
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from services.core.plumbing.migrate import upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url)
    print("database is at the latest schema")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from services.core import apikeys
    from services.core.plumbing.clock import SystemClock
    from services.core.plumbing.db import make_engine, make_session_factory

    settings = _settings()
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    now = SystemClock().now()
    with sessions.begin() as session:
        if args.action == "create":
            try:
                scopes = apikeys.parse_scopes(args.scopes)
            except apikeys.InvalidScopes as exc:
                sys.exit(f"twofa: {exc}")
            created = apikeys.create_key(session, args.name, scopes, now)
            print(f"created key {created.id} ({created.name}) with scopes {','.join(scopes)}")
            print(created.plaintext)  # alone on the last line, for scripts
        elif args.action == "list":
            from services.cli.table import print_table

            print_table(("ID", "NAME", "SCOPES", "STATE", "CREATED"), [
                (key.id, key.name, ",".join(sorted(key.scope_set)),
                 "revoked" if key.revoked_at else "active", f"{key.created_at:%Y-%m-%d}")
                for key in apikeys.list_keys(session)])
        else:
            if not apikeys.revoke_key(session, args.key_id, now):
                sys.exit(f"twofa: no active key {args.key_id}")
            print(f"revoked {args.key_id}")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    import uuid

    from services.core import lockout
    from services.core.bootstrap import build_context
    from services.core.errors import NotFound
    from services.core.plumbing.messaging.outbox import RelayDispatcher

    try:
        token_id = uuid.UUID(args.token) if args.token else None
    except ValueError:
        sys.exit(f"twofa: not a token id: {args.token}")
    ctx = build_context(_settings(), background=False)
    ctx.dispatcher = RelayDispatcher()
    try:
        changed = lockout.unlock(ctx, args.user, token_id)
    except NotFound as exc:
        sys.exit(f"twofa: {exc.message}")
    finally:
        ctx.engine.dispose()
    lines = [f"unlocked {args.user}: {len(changed)} token(s) reset", *map(str, changed)]
    print("\n".join(lines))
    return 0


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless there is none to show (a flag, or
    a default the help text explains itself)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """The ``twofa`` parser and, through ``add_subparsers``, every subcommand's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpWithDefaults)
        super().__init__(*args, **kwargs)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="twofa", description="twofa two-factor authentication service")
    p.add_argument("--version", action="version", version=f"twofa {version('twofa')}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev", help="the whole service locally: API, a worker per queue, relay and the portal",
        description="Migrate the database, start the embedded broker if no broker is configured, "
                    "then the API, one worker per queue, the relay and the reference portal "
                    "(on --port + 1 at /portal/). Prints where to find them once every process "
                    "answers; Ctrl-C stops everything.")
    dev.add_argument("--host", default="127.0.0.1", help="address the API and the portal listen on")
    dev.add_argument("--port", type=int, default=8000,
                     help="port of the API; also the port in TWOFA_PUBLIC_URL (the push app's "
                          "address, in the PUSH enrollment QR code) unless that variable is set")
    dev.add_argument("--portal-port", type=int, default=None,
                     help="port of the reference portal (default: --port + 1)")
    dev.add_argument("--no-portal", action="store_true", help="do not start the portal")
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="API processes (uvicorn workers)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="a Celery worker for some queues")
    worker.add_argument("--queues", default="sms,push,expiry,audit,webhooks,notify",
                        help="comma-separated queues to consume, of sms, push, expiry, audit, "
                             "webhooks, notify")
    worker.add_argument("--concurrency", type=int, default=4,
                        help="threads or processes of the pool")
    worker.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"],
                        help="threads for the senders (sms, push, webhooks, notify); solo for "
                             "expiry and audit")
    worker.add_argument("--quiet", action="store_true",
                        help="no start-up banner and no warning about running as root "
                             "(twofa dev prints its own)")
    _metrics_options(worker)
    worker.set_defaults(func=cmd_worker)

    relay = sub.add_parser(
        "relay", help="outbox relay and the expiry scheduler",
        description="Republishes outbox events the API could not publish and schedules the "
                    "periodic sweeps. Its metrics port also reports the deployment's state: "
                    "outbox backlog, queue depths, audit lag, checkpoint age.")
    _metrics_options(relay)
    relay.set_defaults(func=cmd_relay)
    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=cmd_migrate)

    key = sub.add_parser("apikey", help="manage API keys")
    key_sub = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = key_sub.add_parser(
        "create", help="create a key; the key itself is printed alone on the last line")
    create.add_argument("--name", required=True, help="who uses the key (shown by apikey list)")
    create.add_argument("--scopes", required=True,
                        help=f"comma-separated, of: {','.join(_scopes())}")
    key_sub.add_parser("list", help="every key: id, name, scopes, state, creation date")
    revoke = key_sub.add_parser(
        "revoke", help="revoke a key (it stops working within TWOFA_API_KEY_CACHE_SECONDS)")
    revoke.add_argument("key_id", help="the key's id, as apikey list shows it")
    key.set_defaults(func=cmd_apikey)

    unlock = sub.add_parser(
        "unlock", help="clear a user's lockout: back-offs, failure counts, locked tokens"
    )
    unlock.add_argument("user", help="the user id")
    unlock.add_argument(
        "--token", help="only this token of the user (its id; default: all of them)"
    )
    unlock.set_defaults(func=cmd_unlock)

    from services.cli import audit_cmd, keys_cmd

    audit_cmd.register(sub, _settings)
    keys_cmd.register(sub, _settings)

    from services.cli import portal_cmd

    portal_cmd.register(sub)

    from services.cli import import_cmd, privacyidea_cmd

    privacyidea_cmd.register(sub, _settings)
    import_cmd.register(sub, _settings)
    return p


def _scopes() -> tuple[str, ...]:
    from services.core.apikeys import SCOPES

    return SCOPES


# Options whose value may begin with "-": a Fernet key is URL-safe base64 and a password is
# anything, and argparse would take "--key -x…" for two options.
_FREE_VALUES = ("--key", "--password")


def _attach_free_values(argv: Sequence[str]) -> list[str]:
    """``--key VALUE`` as ``--key=VALUE``, so that a value beginning with "-" stays a value."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        value = next(args, None) if arg in _FREE_VALUES else None
        out.append(arg if value is None else f"{arg}={value}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    # What twofa writes (SQLite databases, dev keys, the console outbox with its codes, the
    # embedded broker's files) is its owner's alone: new files 0600, new directories 0700.
    os.umask(0o077)
    args = parser().parse_args(_attach_free_values(sys.argv[1:] if argv is None else argv))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
