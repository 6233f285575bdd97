"""privacyIDEA 3.14 as the baseline: its own virtualenv, SQLite (WAL), gunicorn 2 sync workers.

Everything lives under ``bench/.cache/`` (git-ignored): the virtualenv ``pi-venv`` (made
once, reused), and a data directory per user count ``pi-data-<N>`` holding pi.cfg, the
encryption key and audit keys made by ``pi-manage setup``, the SQLite database, the
flat-file (passwd) user list, and ``tokens.json`` — the TOTP seeds we imported, which the
load generator needs to compute codes. The whole setup uses privacyIDEA's own tooling:
``pi-manage setup create_enckey|create_audit_keys|create_tables``, ``pi-manage admin add``,
``pi-manage config resolver create`` (passwdresolver), ``pi-manage config realm create``,
and ``pi-manage token import`` (OATH CSV version 2, which assigns each token to its user).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

from bench.compare.procs import Procs, wait_http

VERSION = "3.14"
REALM = "bench"
RESOLVER = "benchusers"


def venv(cache: Path) -> Path:
    """The privacyIDEA virtualenv, created and filled from PyPI the first time."""
    env = cache / "pi-venv"
    if not (env / "bin" / "pi-manage").exists() or not (env / "bin" / "gunicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        subprocess.run(
            [str(env / "bin" / "pip"), "install", "-q", f"privacyidea=={VERSION}", "gunicorn"], check=True
        )
    return env


def pi_version(env: Path) -> str:
    out = subprocess.run(
        [str(env / "bin" / "python"), "-c",
         "import importlib.metadata as m; print(m.version('privacyidea'), m.version('gunicorn'))"],
        capture_output=True, text=True, check=True,
    )
    pi, gunicorn = out.stdout.split()
    return f"privacyIDEA {pi}, gunicorn {gunicorn}"


def manage(env: Path, data: Path, *args: str, stdin: str | None = None) -> None:
    menv = dict(os.environ, PRIVACYIDEA_CONFIGFILE=str(data / "pi.cfg"))
    proc = subprocess.run(
        [str(env / "bin" / "pi-manage"), *args], env=menv, cwd=data, input=stdin,
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pi-manage {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def configure(env: Path, cache: Path, users: int) -> Path:
    """A ready data directory with ``users`` users, each with one TOTP token of a known seed."""
    data = cache / f"pi-data-{users}"
    if (data / "tokens.json").exists():
        return data
    tokens = [{"user": f"u{i}", "token_id": f"TOTPB{i:07d}", "secret_hex": secrets.token_hex(20)} for i in range(users)]
    init_data_dir(env, data, [t["user"] for t in tokens])
    manage(env, data, "admin", "add", "admin", "-p", secrets.token_hex(12))
    import_totp(env, data, tokens)
    (data / "tokens.json").write_text(json.dumps(tokens))  # the seeds the load needs
    return data


def init_data_dir(env: Path, data: Path, users: list[str]) -> None:
    """A fresh privacyIDEA data directory: pi.cfg, keys, tables (SQLite in WAL mode), and a
    realm ``REALM`` (the default realm) of ``users`` from a flat passwd file."""
    if data.exists():
        subprocess.run(["rm", "-rf", str(data)], check=True)
    data.mkdir(parents=True)
    db = data / "pi.sqlite"
    (data / "pi.cfg").write_text(
        "\n".join([
            f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{db}'",
            f"SECRET_KEY = '{secrets.token_hex(24)}'",
            f"PI_PEPPER = '{secrets.token_hex(24)}'",
            f"PI_ENCFILE = '{data / 'enckey'}'",
            f"PI_AUDIT_KEY_PRIVATE = '{data / 'private.pem'}'",
            f"PI_AUDIT_KEY_PUBLIC = '{data / 'public.pem'}'",
            f"PI_LOGFILE = '{data / 'privacyidea.log'}'",
            "PI_LOGLEVEL = 30",  # WARNING: no per-request debug logging
            "",
        ])
    )
    manage(env, data, "setup", "create_enckey")
    manage(env, data, "setup", "create_audit_keys")
    manage(env, data, "setup", "create_tables")
    with sqlite3.connect(db) as conn:  # WAL is a property of the database file; it sticks
        conn.execute("PRAGMA journal_mode=WAL")
    passwd = data / "users.passwd"
    passwd.write_text("".join(f"{u}:x:{10000 + i}:10000:User {i},,,:/home/{u}:/bin/false\n" for i, u in enumerate(users)))
    (data / "resolver.conf").write_text(repr({"fileName": str(passwd)}))
    manage(env, data, "config", "resolver", "create", RESOLVER, "passwdresolver", str(data / "resolver.conf"))
    manage(env, data, "config", "realm", "create", REALM, RESOLVER)


def import_totp(env: Path, data: Path, tokens: list[dict[str, str]]) -> None:
    """``tokens``: ``{user, token_id, secret_hex}``, imported as OATH CSV version 2, which
    assigns each token to its user."""
    csv = "# version: 2\n" + "".join(
        f"{t['user']}, {RESOLVER}, {REALM}, {t['token_id']}, {t['secret_hex']}, totp, 6, 30\n" for t in tokens
    )
    (data / "tokens.csv").write_text(csv)
    try:
        manage(env, data, "token", "import", str(data / "tokens.csv"))
    finally:
        (data / "tokens.csv").unlink()  # the seeds stay only where the caller keeps them


def serve(env: Path, data: Path, port: int, procs: Procs, workers: int = 2) -> str:
    app = f"privacyidea.app:create_app(config_name='production', config_file='{data / 'pi.cfg'}', silent=True)"
    procs.spawn(
        "privacyidea",
        [str(env / "bin" / "gunicorn"), "--workers", str(workers), "--worker-class", "sync",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app],
        env=dict(os.environ, PRIVACYIDEA_CONFIGFILE=str(data / "pi.cfg")), cwd=data,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz/", timeout=60, ok=(200, 404))
    return url
