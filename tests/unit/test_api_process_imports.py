"""What an API process loads: not the code only the workers run, nor a database it does not use.

Every module imported stays in the process's memory for its lifetime, and the API runs as
several processes. The SMS providers' SDKs (Vonage's, with its HTTP clients; Twilio's REST
client on aiohttp) send from the SMS worker only; the QR encoder and the phone number
parser wait for the first QR code or phone number; SQLAlchemy's PostgreSQL dialect is of
no use on SQLite; Celery's Django fixup adapts it to a framework twofa does not use. The
import is checked in a fresh interpreter, as uvicorn starts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER_ONLY = ("vonage", "vonage_http_client", "vonage_sms", "aiohttp", "requests", "twilio.rest")
UNUSED = ("celery.fixups.django",)
ON_FIRST_USE = ("segno", "phonenumbers")


def modules_after_api_start(tmp_path: Path, database_url: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOFA_")}
    env.update(TWOFA_ENV="dev", TWOFA_DATABASE_URL=database_url, TWOFA_VAR_DIR=str(tmp_path),
               TWOFA_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys, services.api.asgi; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_api_does_not_load_the_sms_senders_or_unused_code(tmp_path: Path) -> None:
    loaded = modules_after_api_start(tmp_path, f"sqlite:///{tmp_path / 'twofa.db'}")
    assert "services.api.routes.callbacks" in loaded  # the Vonage receipts are served
    assert not [name for name in WORKER_ONLY if name in loaded]
    assert not [name for name in UNUSED if name in loaded]
    assert not [name for name in ON_FIRST_USE if name in loaded]
    assert "sqlalchemy.dialects.postgresql" not in loaded
